/*
 * collect.c - collection (DESIGN P9): the store frees what the mesh no
 * longer needs. docs/ARCHITECTURE.md "Collection" says why it is safe.
 *
 * What becomes garbage is queued, in the same transaction as the change
 * that made it so, in DB_GCQ: (time ms, inode id, version stamp) -> the
 * stamp of the op that made it so (its cause).
 *   - A version superseded by a complete one (content.c): time and cause
 *     are the superseding version's stamp.
 *   - An inode one of whose entries moved to the trash (op.c): version
 *     stamp zero, time and cause are the move's stamp.
 *
 * The collector takes an item once its cause is settled (the owner's
 * settled vector covers it, mfs_store_collect_settled: every member holds
 * the op and this store holds every op concurrent with it) and the
 * retention has passed since its time, and checks that it is still
 * garbage: a version still superseded, not pinned by an open file and not
 * the base of unpublished writes; an inode with no visible name, no open
 * file and no unpublished writes. It drops those version records (and
 * their chunk wants) in small write transactions.
 *
 * Chunks are then swept, mark and sweep: every hash that a version record,
 * a whole-block reference (DB_DREFS) or a stream chunk (DB_DCHUNKS) names
 * is marked from a read
 * snapshot, without the writer lock; then the chunks nothing names are
 * deleted, a few hundred per write transaction. A write that names a chunk
 * while the mark runs notes its hashes (gc_note) and the sweep keeps them.
 */
#include "internal.h"
#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>

/* A version superseded this recently is never taken, whatever the
 * retention: an open() that read the current version just before it was
 * superseded pins it a moment later (mfs_store_pin_set). */
#define GRACE_MS 1000
/* Work per write transaction: the writer lock is held for one step. */
#define STEP_ITEMS 256
#define STEP_DROPS 16
#define SWEEP_KEYS 1024
#define SWEEP_DELS 64
#define PEND_MAX 64    /* versions still arriving looked at per inode */
#define SWEEP_MOVES 16 /* chunks copied between packs per step (1 MiB) */
/* With less free space than this share of the store's filesystem, the
 * retention yields: trashed versions go at once (oldest first). */
#define PRESSURE_FREE_PCT 5

static const uint8_t zero_hash[MFS_HASH_LEN]; /* a hole: nothing stored */

/* Deletes the record under cursor c and moves to the one after it (its
 * key and value in key, val): 0, MDB_NOTFOUND at the end, or w's error. */
static int cursor_drop(wtx *w, MDB_cursor *c, MDB_val *key, MDB_val *val)
{
    wtx_undo_cursor(w, c);
    int rc = mdb_cursor_del(c, 0);
    wtx_mut(w);
    return rc ? wtx_fail(w, rc) : cursor_after_del(c, key, val);
}

/* An open-addressing set of the first 8 bytes of chunk hashes (0 is the
 * empty slot; a prefix of 0 is stored as 1). A false match only keeps a
 * chunk one more cycle. */
typedef struct hset {
    uint64_t *v;
    size_t cap, n;
    bool oom; /* an add failed: the mark is incomplete, sweep nothing */
} hset;

static uint64_t hkey(const uint8_t *h)
{
    uint64_t k = mfs_be64_get(h);
    return k ? k : 1;
}

static bool hset_grow(hset *s)
{
    size_t cap = s->cap ? s->cap * 2 : 1024;
    uint64_t *v = calloc(cap, sizeof(*v));
    if (!v)
        return false;
    for (size_t i = 0; i < s->cap; i++) {
        uint64_t k = s->v[i];
        if (!k)
            continue;
        size_t j = (size_t)(k * 0x9E3779B97F4A7C15ull) & (cap - 1);
        while (v[j])
            j = (j + 1) & (cap - 1);
        v[j] = k;
    }
    free(s->v);
    s->v = v;
    s->cap = cap;
    return true;
}

static void hset_add(hset *s, const uint8_t *h)
{
    if ((s->n + 1) * 2 > s->cap && !hset_grow(s)) {
        s->oom = true;
        return;
    }
    uint64_t k = hkey(h);
    size_t j = (size_t)(k * 0x9E3779B97F4A7C15ull) & (s->cap - 1);
    while (s->v[j]) {
        if (s->v[j] == k)
            return;
        j = (j + 1) & (s->cap - 1);
    }
    s->v[j] = k;
    s->n++;
}

static bool hset_has(const hset *s, const uint8_t *h)
{
    if (!s->cap)
        return false;
    uint64_t k = hkey(h);
    size_t j = (size_t)(k * 0x9E3779B97F4A7C15ull) & (s->cap - 1);
    while (s->v[j]) {
        if (s->v[j] == k)
            return true;
        j = (j + 1) & (s->cap - 1);
    }
    return false;
}

static void hset_free(hset *s)
{
    free(s->v);
    memset(s, 0, sizeof(*s));
}

typedef struct pin {
    const void *key; /* the open file (fs/'s handle) */
    mfs_id inode;
    mfs_stamp ver;
} pin;

struct collector {
    pthread_mutex_t lock; /* everything below but the mark's fields */
    pthread_cond_t cond;
    pthread_t thread;
    bool started, stop, wake;
    mfs_collect_config cfg;
    mfs_vv settled;
    bool have_settled;
    pin *pins;
    size_t npins, cappins;
    mfs_collect_stats st;
    bool sweep_needed;
    /* where the next pass over logged moves starts (forget_settled):
     * every move before it was settled and looked at */
    uint8_t mv_next[MOVES_KEY_LEN];
    bool mv_started;
    /* the pass over inode numbers, once per open (inos_step_tx) */
    bool inos_done;
    uint64_t inos_next;
    /* the mark: guarded by the store's wlock */
    bool marking;
    hset since;
};

/* The queue's times are this node's own (when an item was queued): the
 * wall clock as it is, not the mesh's (a correction that comes or goes
 * would move every item's due time). */
static uint64_t wall_ms(mfs_store *s)
{
    return mfs_store_wall_ms(s);
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int collect_init(mfs_store *s)
{
    struct collector *c = calloc(1, sizeof(*c));
    if (!c)
        return -ENOMEM;
    pthread_mutex_init(&c->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cond, &ca);
    pthread_condattr_destroy(&ca);
    c->cfg.retention_ms = MFS_COLLECT_RETENTION_DEFAULT_MS;
    c->sweep_needed = true; /* orphans of earlier runs (a crash mid-step) */
    s->col = c;
    return 0;
}

void collect_sweep_soon(mfs_store *s)
{
    struct collector *c = s->col;
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->sweep_needed = true;
    pthread_mutex_unlock(&c->lock);
}

void collect_free(mfs_store *s)
{
    struct collector *c = s->col;
    if (!c)
        return;
    mfs_store_collect_stop(s);
    mfs_vv_free(&c->settled);
    free(c->pins);
    hset_free(&c->since);
    pthread_cond_destroy(&c->cond);
    pthread_mutex_destroy(&c->lock);
    free(c);
    s->col = NULL;
}

static void wake(struct collector *c)
{
    pthread_mutex_lock(&c->lock);
    c->wake = true;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

/* ---- the mark's notes (called by writers, under wlock) ---- */

void gc_note(mfs_store *s, const uint8_t *hashes, size_t n)
{
    struct collector *c = s->col;
    if (!c || !c->marking)
        return;
    for (size_t i = 0; i < n; i++)
        if (memcmp(hashes + i * HASH_LEN, zero_hash, HASH_LEN))
            hset_add(&c->since, hashes + i * HASH_LEN);
}

void gc_wake(mfs_store *s)
{
    if (s->col)
        wake(s->col);
}

/* ---- pins ---- */

int mfs_store_pin_set(mfs_store *s, const void *key, uint64_t ino,
                      mfs_stamp ver)
{
    struct collector *c = s->col;
    if (!c)
        return 0;
    objkey ok;
    MDB_txn *txn;
    int rc = store_read_begin(s, &txn);
    if (rc)
        return rc;
    rc = ino_lookup_obj(s, txn, ino, &ok);
    store_read_end(s, txn);
    if (rc)
        return rc;
    mfs_id inode = objkey_id(&ok);
    pthread_mutex_lock(&c->lock);
    size_t i = 0;
    while (i < c->npins && c->pins[i].key != key)
        i++;
    if (i == c->npins) {
        if (c->npins == c->cappins) {
            size_t cap = c->cappins ? c->cappins * 2 : 64;
            pin *p = realloc(c->pins, cap * sizeof(*p));
            if (!p) {
                pthread_mutex_unlock(&c->lock);
                return -ENOMEM;
            }
            c->pins = p;
            c->cappins = cap;
        }
        c->npins++;
    }
    c->pins[i] = (pin){key, inode, ver};
    pthread_mutex_unlock(&c->lock);
    return 0;
}

void mfs_store_pin_drop(mfs_store *s, const void *key)
{
    struct collector *c = s->col;
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->npins; i++)
        if (c->pins[i].key == key) {
            c->pins[i] = c->pins[--c->npins];
            c->wake = true; /* what it pinned may go now */
            pthread_cond_signal(&c->cond);
            break;
        }
    pthread_mutex_unlock(&c->lock);
}

size_t gc_pins_list(mfs_store *s, mfs_id *inode, mfs_stamp *ver, size_t cap)
{
    struct collector *c = s->col;
    if (!c)
        return 0;
    pthread_mutex_lock(&c->lock);
    size_t n = c->npins;
    for (size_t i = 0; i < n && i < cap; i++) {
        inode[i] = c->pins[i].inode;
        ver[i] = c->pins[i].ver;
    }
    pthread_mutex_unlock(&c->lock);
    return n;
}

/* Is version ver of inode (any version when ver is zero) pinned? */
static bool pinned(struct collector *c, mfs_id inode, mfs_stamp ver)
{
    bool any = ver.hlc == 0 && ver.node == 0;
    bool r = false;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i < c->npins && !r; i++)
        r = id_eq(c->pins[i].inode, inode) &&
            (any || stamp_eq(c->pins[i].ver, ver));
    pthread_mutex_unlock(&c->lock);
    return r;
}

/* ---- the owner's settings ---- */

void mfs_store_collect_settled(mfs_store *s, const mfs_vv *settled)
{
    struct collector *c = s->col;
    if (!c)
        return;
    mfs_vv copy = {0, NULL};
    if (settled && settled->n) {
        copy.e = malloc(settled->n * sizeof(*copy.e));
        if (!copy.e)
            return; /* keeps the older vector: collects less, never more */
        memcpy(copy.e, settled->e, settled->n * sizeof(*copy.e));
        copy.n = settled->n;
    }
    pthread_mutex_lock(&c->lock);
    bool same =
        c->have_settled && c->settled.n == copy.n &&
        (!copy.n || !memcmp(c->settled.e, copy.e, copy.n * sizeof(*copy.e)));
    mfs_vv_free(&c->settled);
    c->settled = copy;
    c->have_settled = true;
    if (!same) {
        c->wake = true;
        pthread_cond_signal(&c->cond);
    }
    pthread_mutex_unlock(&c->lock);
}

void mfs_store_collect_set(mfs_store *s, const mfs_collect_config *cfg)
{
    struct collector *c = s->col;
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    c->cfg = *cfg;
    c->wake = true;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
}

void mfs_store_collect_stats_get(mfs_store *s, mfs_collect_stats *out)
{
    memset(out, 0, sizeof(*out));
    struct collector *c = s->col;
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    *out = c->st;
    out->retention_ms = c->cfg.retention_ms;
    out->settled = c->have_settled;
    pthread_mutex_unlock(&c->lock);
}

/* ---- dropping versions ---- */

/* Version ver stops asking for its chunks (it will never show). */
static void drop_wants(wtx *w, mfs_id inode, mfs_stamp ver)
{
    uint8_t k[VKEY_LEN];
    vkey_put(k, inode, ver);
    uint8_t *hashes = NULL;
    uint32_t n = 0;
    if (content_version_chunks(w->s, w->txn, inode, ver, NULL, 0, &n) == 0 &&
        n && (hashes = malloc((size_t)n * HASH_LEN)) != NULL &&
        content_version_chunks(w->s, w->txn, inode, ver, hashes, n, &n) == 0) {
        for (uint32_t i = 0; i < n; i++) {
            uint8_t wk[WANT_KEY_LEN];
            want_key_put(wk, hashes + (size_t)i * HASH_LEN, k);
            tdel(w, DB_WANT, wk, WANT_KEY_LEN);
        }
    }
    free(hashes);
}

static void drop_version(wtx *w, mfs_id inode, mfs_stamp ver,
                         mfs_collect_stats *st)
{
    uint8_t k[VKEY_LEN];
    vkey_put(k, inode, ver);
    MDB_val v;
    if (tget(w->s, w->txn, DB_VMISSING, k, VKEY_LEN, &v) == 0) {
        drop_wants(w, inode, ver);
        tdel(w, DB_VMISSING, k, VKEY_LEN);
    }
    if (tget(w->s, w->txn, DB_VERSIONS, k, VKEY_LEN, &v) == 0) {
        tdel(w, DB_VERSIONS, k, VKEY_LEN);
        st->versions++;
    }
    tdel(w, DB_SUPERSEDED, k, VKEY_LEN);
    tdel(w, DB_HEADS, k, VKEY_LEN);
}

static bool has_links(mfs_store *s, MDB_txn *txn, mfs_id inode)
{
    MDB_cursor *c;
    if (mdb_cursor_open(txn, s->db[DB_LINKS], &c))
        return true; /* cannot tell: keep */
    uint8_t k[ID_KEY_LEN];
    id_put(k, inode);
    MDB_val key = {ID_KEY_LEN, k}, val;
    bool r = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE) == 0 &&
             key.mv_size >= ID_LEN && !memcmp(key.mv_data, k, ID_LEN);
    mdb_cursor_close(c);
    return r;
}

/* A version the store must keep for local reasons: pinned by an open
 * file, or the base of unpublished writes. */
static bool held_locally(wtx *w, mfs_id inode, mfs_stamp ver)
{
    if (pinned(w->s->col, inode, ver))
        return true;
    dinfo_rec d;
    if (dinfo_get(w->s, w->txn, inode, &d) != 0)
        return false;
    return (ver.hlc == 0 && ver.node == 0) || stamp_eq(d.base, ver);
}

enum { ITEM_DONE, ITEM_KEEP, ITEM_AGAIN };

/* cause == ver: a DROP version, garbage once it did its work. */
static int collect_version(wtx *w, mfs_id inode, mfs_stamp ver, mfs_stamp cause,
                           mfs_collect_stats *st)
{
    uint8_t k[VKEY_LEN];
    vkey_put(k, inode, ver);
    MDB_val v;
    if (!stamp_eq(cause, ver) &&
        tget(w->s, w->txn, DB_SUPERSEDED, k, VKEY_LEN, &v) != 0)
        return ITEM_DONE; /* gone already */
    if (tget(w->s, w->txn, DB_HEADS, k, VKEY_LEN, &v) == 0)
        return ITEM_DONE; /* not garbage */
    if (tget(w->s, w->txn, DB_VERSIONS, k, VKEY_LEN, &v) != 0)
        return ITEM_KEEP; /* superseded before it arrived: wait for it, so
                             that it lands superseded */
    if (held_locally(w, inode, ver))
        return ITEM_KEEP;
    drop_version(w, inode, ver, st);
    return ITEM_DONE;
}

/* Can no version in pend bring back the entry that the move mv (stamped
 * del) deleted: each is seen by mv, or an ancestor of a version it saw
 * (which supersedes it once complete), or written by a node that had
 * applied that delete (view_resurrects)? */
static bool covered(mfs_store *s, MDB_txn *txn, mfs_id inode, const mfs_op *mv,
                    mfs_stamp del, const mfs_stamp *pend, int n)
{
    for (int i = 0; i < n; i++)
        if (!content_seen(s, txn, inode, mv->seen, mv->nseen, pend[i]) &&
            !content_knows_delete(s, txn, inode, pend[i], del))
            return false;
    return true;
}

/* Could the deleted inode still come back? It does when a head shows that
 * a deleting move had not seen (an edit concurrent with the delete,
 * docs/ARCHITECTURE.md "The derived view"). Its heads are all seen (it is
 * not visible), but a version still arriving (chunks missing, not
 * superseded) that a delete had not seen becomes such a head when it
 * completes: the inode is not garbage until then. A version every delete
 * had seen, or an ancestor of one, cannot bring it back: its chunks may be
 * gone everywhere. */
/* The versions of inode still arriving and not superseded (pend, *n of
 * them); false when there are too many to look at or they cannot be
 * read. */
static bool pending_versions(mfs_store *s, MDB_txn *txn, mfs_id inode,
                             mfs_stamp pend[PEND_MAX], int *n)
{
    MDB_cursor *c;
    *n = 0;
    if (mdb_cursor_open(txn, s->db[DB_VMISSING], &c))
        return false;
    uint8_t k[ID_KEY_LEN];
    id_put(k, inode);
    MDB_val key = {ID_KEY_LEN, k}, val, v;
    int rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size == VKEY_LEN &&
           !memcmp(key.mv_data, k, ID_LEN)) {
        if (tget(s, txn, DB_SUPERSEDED, key.mv_data, VKEY_LEN, &v) != 0) {
            if (*n == PEND_MAX)
                break;
            pend[(*n)++] = stamp_get((uint8_t *)key.mv_data + VKEY_STAMP);
        }
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    return *n < PEND_MAX;
}

static bool may_come_back(mfs_store *s, MDB_txn *txn, mfs_id inode)
{
    mfs_stamp pend[PEND_MAX];
    int n;
    if (!pending_versions(s, txn, inode, pend, &n))
        return true; /* too many to look at: keep */
    if (!n)
        return false;
    MDB_cursor *c;
    if (mdb_cursor_open(txn, s->db[DB_ILINKS], &c))
        return true;
    uint8_t k[ID_KEY_LEN];
    id_put(k, inode);
    MDB_val key = {ID_KEY_LEN, k}, val;
    bool r = false;
    int rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (!r && rc == 0 && key.mv_size == PAIR_KEY_LEN &&
           !memcmp(key.mv_data, k, ID_LEN)) {
        entry_rec er;
        mfs_op mv;
        if (entry_get(s, txn, id_get((uint8_t *)key.mv_data + PAIR_KEY_B),
                      &er) == 0 &&
            er.exists) {
            if (!id_eq(er.parent, MFS_ID_TRASH) ||
                tree_last_move(s, txn, er.st, &mv, NULL) != 0) {
                r = true; /* not deleted, or cannot tell: keep */
                break;
            }
            r = !covered(s, txn, inode, &mv, er.st, pend, n);
        }
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    return r;
}

/* Every version of inode still arriving stops asking for its chunks. */
static void unwant_pending(wtx *w, mfs_id inode)
{
    MDB_cursor *c;
    if (mdb_cursor_open(w->txn, w->s->db[DB_VMISSING], &c))
        return;
    uint8_t k[ID_KEY_LEN];
    id_put(k, inode);
    MDB_val key = {ID_KEY_LEN, k}, val;
    mfs_stamp pend[PEND_MAX];
    int n = 0;
    int rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && n < PEND_MAX && key.mv_size == VKEY_LEN &&
           !memcmp(key.mv_data, k, ID_LEN)) {
        pend[n++] = stamp_get((uint8_t *)key.mv_data + VKEY_STAMP);
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    for (int i = 0; i < n && !w->err; i++)
        drop_wants(w, inode, pend[i]);
}

static int stamp_seq(MDB_txn *txn, mfs_store *s, mfs_stamp st, uint64_t *seq);

/* Every name of inode is in the trash, each by a settled delete (the
 * item's cause is one of them; another name's delete may not be, and a
 * move concurrent with it may still bring that name back): the names, in
 * ents (n of them), or -1 when not (or too many to look at). */
static int names_settled(wtx *w, mfs_id inode, const mfs_vv *settled,
                         mfs_id *ents)
{
    int n = tree_names(w->s, w->txn, inode, ents, TREE_NAMES_MAX);
    if (n < 0 || n > TREE_NAMES_MAX)
        return -1;
    for (int i = 0; i < n; i++) {
        entry_rec er;
        uint64_t seq;
        if (entry_get(w->s, w->txn, ents[i], &er) != 0 ||
            !id_eq(er.parent, MFS_ID_TRASH) ||
            stamp_seq(w->txn, w->s, er.st, &seq) != 0 ||
            seq > mfs_vv_get(settled, er.st.node))
            return -1;
    }
    return n;
}

/* Is the op of every version record inode still has settled? What
 * hides a file that an edit concurrent with its delete brought back is
 * a version (a DROP of the edit's conflict copy, say), which can be made
 * after the delete: until it is settled, a node that holds the delete
 * and the edit but not it sees the file back and may write to it, and
 * that version, made after the delete and not seen by it, brings the
 * file back everywhere. A store that had collected the file under the
 * settled delete before it arrived could not show it (replication
 * simulator long seed 1010). Once every version is settled, a version
 * this store does not hold yet was made by a node that held them all. */
static bool versions_settled(wtx *w, mfs_id inode, const mfs_vv *settled)
{
    MDB_cursor *c, *ops;
    if (mdb_cursor_open(w->txn, w->s->db[DB_VERSIONS], &c))
        return false;
    if (mdb_cursor_open(w->txn, w->s->db[DB_OPS], &ops)) {
        mdb_cursor_close(c);
        return false;
    }
    uint8_t k[ID_KEY_LEN];
    id_put(k, inode);
    MDB_val key = {ID_KEY_LEN, k}, val;
    bool r = true;
    int rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (r && rc == 0 && key.mv_size == VKEY_LEN &&
           !memcmp(key.mv_data, k, ID_LEN)) {
        mfs_stamp st = stamp_get((uint8_t *)key.mv_data + VKEY_STAMP);
        uint64_t seq;
        r = op_seq_of_stamp(w->s, ops, st, &seq) == 0 &&
            seq <= mfs_vv_get(settled, st.node);
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(ops);
    mdb_cursor_close(c);
    return r;
}

/* The rest of a deleted inode once its content is gone (collect_inode):
 * its entries (ents, n: names_settled found each in the trash by a
 * settled delete), with their logged moves (tree_forget_entry), its
 * xattrs and its record. A directory that still has raw children (a file
 * created in it concurrently with its delete, shown elsewhere) keeps all
 * of it, until the last one leaves it (moved or deleted: tree.c queues it
 * again, and that move's being settled is the cause). Its local inode
 * number stays mapped (a kernel may still ask about it: it is not
 * found). */
/* The largest hlc of a settled op: every op still to come has a larger
 * one (its writer held them all), so no undo reaches a move at or below
 * it. */
static uint64_t settled_top(wtx *w, const mfs_vv *settled)
{
    uint64_t top = oplog_floor_top(w->s, w->txn);
    MDB_cursor *c;
    if (mdb_cursor_open(w->txn, w->s->db[DB_OPS], &c))
        return top;
    for (size_t i = 0; i < settled->n; i++) {
        uint64_t h = op_hlc_at(w->s, c, settled->e[i].node, settled->e[i].seq);
        if (h > top)
            top = h;
    }
    mdb_cursor_close(c);
    return top;
}

static int drop_tombstone(wtx *w, mfs_id inode, const mfs_id *ents, int n,
                          const mfs_vv *settled, mfs_collect_stats *st)
{
    uint8_t k[ID_KEY_LEN];
    id_put(k, inode);
    MDB_cursor *c;
    MDB_val key, val;
    /* a directory with raw children keeps its tombstone */
    if (mdb_cursor_open(w->txn, w->s->db[DB_RCHILD], &c))
        return ITEM_KEEP;
    key = (MDB_val){ID_KEY_LEN, k};
    bool children = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE) == 0 &&
                    key.mv_size == PAIR_KEY_LEN &&
                    !memcmp(key.mv_data, k, ID_LEN);
    mdb_cursor_close(c);
    if (children)
        return ITEM_DONE; /* queued again when the last one leaves */
    /* a child that left it by a move an undo may still reach could be put
     * back (a redo skipped as a cycle leaves it there) */
    inode_rec in;
    bool here = inode_get(w->s, w->txn, inode, &in) == 0;
    if (here && in.type == S_IFDIR &&
        tree_left_since(w->s, w->txn, inode, settled_top(w, settled)))
        return ITEM_KEEP;
    if (!here && !n)
        return ITEM_DONE; /* gone already (a second item of it) */
    for (int i = 0; i < n && !w->err; i++)
        tree_forget_entry(w, ents[i]);
    tdel_prefix(w, DB_XATTRS, k, ID_KEY_LEN, ID_LEN);
    tdel(w, DB_INODES, k, ID_KEY_LEN);
    ino_forget(w, inode);
    view_touch_inode(w, inode);
    st->tombstones++;
    return ITEM_DONE;
}

/* The removed hard links of a file that keeps a live name (ln a b;
 * rm b): each entry in the trash whose delete is folded (settled here,
 * and at or below oplog_floor_top from now on) and that does not show
 * goes, with its logged moves, once every version record of the file is
 * settled and no version still arriving could bring it back. It cannot
 * come back: an op not here yet was made by a node that had applied the
 * delete and every version here (all settled), so it names neither the
 * entry nor a version concurrent with the delete; and every version
 * published here from now on knows the delete through its kfloor
 * (content.c deleted_names), so a node that still holds the entry does
 * not show it again for it. ITEM_KEEP while one waits (its delete not
 * folded yet: the pass folds after its steps), else ITEM_DONE. */
static int collect_removed_links(wtx *w, mfs_id inode, const mfs_vv *settled,
                                 mfs_collect_stats *st)
{
    inode_rec in;
    if (inode_get(w->s, w->txn, inode, &in) != 0 || in.type == S_IFDIR)
        return ITEM_DONE;
    mfs_id ents[TREE_NAMES_MAX];
    int n = tree_names(w->s, w->txn, inode, ents, TREE_NAMES_MAX);
    if (n < 0 || n > TREE_NAMES_MAX)
        return ITEM_DONE; /* too many to look at: they stay */
    mfs_stamp pend[PEND_MAX];
    int npend = -1, keep = ITEM_DONE, vset = -1;
    for (int i = 0; i < n && !w->err; i++) {
        entry_rec er;
        mfs_op mv;
        uint64_t fseq, fhlc;
        if (entry_get(w->s, w->txn, ents[i], &er) != 0 || !er.exists ||
            !id_eq(er.parent, MFS_ID_TRASH))
            continue;
        if (oplog_floor(w->s, w->txn, er.st.node, &fseq, &fhlc) != 0 ||
            er.st.hlc > fhlc) {
            keep = ITEM_KEEP; /* not folded yet */
            continue;
        }
        if (w->s->hooks->crdt->deleted_shows(w->s, w->txn, &er))
            continue; /* shown: its next delete queues it again */
        if (vset < 0)
            vset = versions_settled(w, inode, settled);
        if (npend < 0 && !pending_versions(w->s, w->txn, inode, pend, &npend))
            return ITEM_KEEP;
        if (!vset || tree_last_move(w->s, w->txn, er.st, &mv, NULL) != 0 ||
            !covered(w->s, w->txn, inode, &mv, er.st, pend, npend)) {
            keep = ITEM_KEEP;
            continue;
        }
        tree_forget_entry(w, ents[i]);
        st->tombstones++;
    }
    return keep;
}

static int collect_inode(wtx *w, mfs_id inode, const mfs_vv *settled,
                         mfs_collect_stats *st)
{
    /* Visible: its next delete queues it again; its removed hard links
     * go (collect_removed_links) */
    if (has_links(w->s, w->txn, inode))
        return collect_removed_links(w, inode, settled, st);
    /* Its content goes only once every name's delete settled: the item's
     * cause is one delete; a move concurrent with another name's delete,
     * not here yet, may bring that name back, and the content with it
     * (replication simulator, seed 18: a node dropped its own newest
     * version, whose op was out, and every peer waited for its chunk) */
    mfs_id ents[TREE_NAMES_MAX];
    int nents = names_settled(w, inode, settled, ents);
    if (nents < 0 || !versions_settled(w, inode, settled))
        return ITEM_KEEP;
    if (may_come_back(w->s, w->txn, inode))
        return ITEM_KEEP;
    if (held_locally(w, inode, (mfs_stamp){0, 0})) {
        /* an open file or unpublished writes keep it here, but what is
         * still arriving can never show: stop asking for it (the others
         * may have collected it) */
        unwant_pending(w, inode);
        return ITEM_KEEP;
    }
    MDB_cursor *c;
    int rc = mdb_cursor_open(w->txn, w->s->db[DB_VERSIONS], &c);
    if (rc) {
        wtx_fail(w, rc);
        return ITEM_KEEP;
    }
    uint8_t k[ID_KEY_LEN];
    id_put(k, inode);
    MDB_val key = {ID_KEY_LEN, k}, val;
    mfs_stamp vers[STEP_DROPS];
    int n = 0;
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && n < STEP_DROPS && key.mv_size == VKEY_LEN &&
           !memcmp(key.mv_data, k, ID_LEN)) {
        vers[n++] = stamp_get((uint8_t *)key.mv_data + VKEY_STAMP);
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    bool more =
        rc == 0 && key.mv_size == VKEY_LEN && !memcmp(key.mv_data, k, ID_LEN);
    mdb_cursor_close(c);
    if (!n)
        return drop_tombstone(w, inode, ents, nents, settled, st);
    for (int i = 0; i < n; i++)
        drop_version(w, inode, vers[i], st);
    /* what it shows now: nothing (it has no name; a concurrent edit that
     * brings it back is a new head and refreshes it) */
    content_refresh(w, inode);
    view_touch_inode(w, inode);
    if (more)
        return ITEM_AGAIN; /* the rest in the next step */
    st->inodes++;
    return drop_tombstone(w, inode, ents, nents, settled, st);
}

/* The sequence number of the op with stamp st, from the op log. */
static int stamp_seq(MDB_txn *txn, mfs_store *s, mfs_stamp st, uint64_t *seq)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, s->db[DB_OPS], &c);
    if (rc)
        return mdb_to_errno(rc);
    rc = op_seq_of_stamp(s, c, st, seq);
    mdb_cursor_close(c);
    return rc;
}

typedef struct step {
    uint64_t now, retention;
    bool pressure;
    uint64_t floor; /* the trash's floor: items queued up to it go early */
    mfs_vv settled;
    uint8_t next[GCQ_KEY_LEN]; /* where the next step starts */
    bool started, done;
    mfs_collect_stats st; /* this pass: counts and what holds it back */
    uint64_t held, held_origin;
} step;

/* What taking an item frees, roughly: the size of the version (or of the
 * deleted file). Shared chunks make it an upper bound. */
static uint64_t item_bytes(mfs_store *s, MDB_txn *txn, mfs_id inode,
                           mfs_stamp ver)
{
    if (ver.hlc || ver.node)
        return content_version_size(s, txn, inode, ver);
    inode_rec in;
    return inode_get(s, txn, inode, &in) == 0 ? in.size : 0;
}

static int step_tx(wtx *w, void *arg)
{
    step *a = arg;
    MDB_cursor *c;
    int rc = mdb_cursor_open(w->txn, w->s->db[DB_GCQ], &c);
    if (rc)
        return wtx_fail(w, rc);
    MDB_val key = {GCQ_KEY_LEN, a->next}, val;
    rc = mdb_cursor_get(c, &key, &val, a->started ? MDB_SET_RANGE : MDB_FIRST);
    a->started = true;
    int seen = 0, drops = 0;
    bool more = false; /* stopped by the step's budget, not the queue's end */
    while (rc == 0 && !w->err) {
        if (seen >= STEP_ITEMS || drops >= STEP_DROPS) {
            more = true;
            break;
        }
        seen++;
        bool move =
            key.mv_size == GCQ_KEY_LEN && val.mv_size == GCQ_VAL_MOVE_LEN &&
            ((const uint8_t *)val.mv_data)[GCQ_VAL_MOVE_TAG] == GCQ_MOVE;
        if (key.mv_size != GCQ_KEY_LEN ||
            (val.mv_size != GCQ_VAL_LEN && !move)) {
            rc = cursor_drop(w, c, &key, &val); /* not ours: drop it */
            continue;
        }
        const uint8_t *kb = key.mv_data;
        uint64_t t = mfs_be64_get(kb + GCQ_KEY_TIME);
        bool early = !a->pressure && t + a->retention > a->now;
        if (t + GRACE_MS > a->now || (early && t > a->floor))
            break; /* in time order: nothing later is due either */
        mfs_id inode = id_get(kb + GCQ_KEY_ID);
        mfs_stamp ver = stamp_get(kb + GCQ_KEY_STAMP);
        mfs_stamp cause =
            stamp_get((const uint8_t *)val.mv_data + GCQ_VAL_CAUSE);
        uint64_t seq = 0;
        if (stamp_seq(w->txn, w->s, cause, &seq) != 0 ||
            seq > mfs_vv_get(&a->settled, cause.node)) {
            a->held++;
            if (!a->held_origin)
                a->held_origin = cause.node;
            rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
            continue;
        }
        if (move) {
            /* a logged move no longer current, its successor settled */
            if (tree_forget_move(w, inode, ver) > 0)
                a->st.moves++;
            rc = cursor_drop(w, c, &key, &val);
            continue;
        }
        uint64_t before = a->st.versions;
        int r = ver.hlc == 0 && ver.node == 0
                    ? collect_inode(w, inode, &a->settled, &a->st)
                    : collect_version(w, inode, ver, cause, &a->st);
        drops += (int)(a->st.versions - before);
        if (r == ITEM_AGAIN) {
            more = true; /* the rest of this inode's versions next step */
            break;
        }
        if (r == ITEM_KEEP) {
            a->st.pinned++;
            rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
            continue;
        }
        if (early) /* below the trash's floor */
            a->st.early++;
        rc = cursor_drop(w, c, &key, &val);
    }
    if (more && key.mv_size == GCQ_KEY_LEN)
        memcpy(a->next, key.mv_data, GCQ_KEY_LEN);
    else
        a->done = true;
    if (rc && rc != MDB_NOTFOUND)
        wtx_fail(w, rc);
    mdb_cursor_close(c);
    return w->err;
}

/* ---- the sweep ---- */

static int mark_begin_tx(wtx *w, void *arg)
{
    (void)arg;
    struct collector *c = w->s->col;
    hset_free(&c->since);
    c->marking = true;
    return 0;
}

static int mark_end_tx(wtx *w, void *arg)
{
    (void)arg;
    struct collector *c = w->s->col;
    c->marking = false;
    hset_free(&c->since);
    return 0;
}

static int mark_db(mfs_store *s, MDB_txn *txn, int db, hset *live)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, s->db[db], &c);
    if (rc)
        return mdb_to_errno(rc);
    MDB_val key, val;
    rc = mdb_cursor_get(c, &key, &val, MDB_FIRST);
    while (rc == 0 && !live->oom) {
        if (db == DB_DREFS || db == DB_DCHUNKS) { /* the hash first */
            if (val.mv_size == (db == DB_DREFS ? DREFS_VAL_LEN
                                               : DCHUNKS_VAL_LEN) &&
                memcmp(val.mv_data, zero_hash, HASH_LEN))
                hset_add(live, val.mv_data);
        } else {
            version_view vr;
            if (version_decode(val.mv_data, val.mv_size, &vr)) {
                live->oom = true; /* unreadable: mark cannot be trusted */
                break;
            }
            const uint8_t *h = vr.hashes;
            for (uint32_t i = 0; i < vr.nchunks; i++)
                if (memcmp(h + (size_t)i * HASH_LEN, zero_hash, HASH_LEN))
                    hset_add(live, h + (size_t)i * HASH_LEN);
        }
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : mdb_to_errno(rc);
}

typedef struct sweep {
    const hset *live;
    uint8_t next[CHUNKS_KEY_LEN];
    bool started, done;
    uint64_t chunks, bytes;
    uint64_t moved; /* chunks moved out of packs being evacuated */
} sweep;

static int sweep_tx(wtx *w, void *arg)
{
    sweep *a = arg;
    struct collector *col = w->s->col;
    MDB_cursor *c;
    int rc = mdb_cursor_open(w->txn, w->s->db[DB_CHUNKS], &c);
    if (rc)
        return wtx_fail(w, rc);
    MDB_val key = {CHUNKS_KEY_LEN, a->next}, val;
    rc = mdb_cursor_get(c, &key, &val, a->started ? MDB_SET_RANGE : MDB_FIRST);
    a->started = true;
    int seen = 0, dels = 0, moves = 0;
    while (rc == 0 && seen < SWEEP_KEYS && dels < SWEEP_DELS &&
           moves < SWEEP_MOVES && !w->err) {
        seen++;
        if (key.mv_size == CHUNKS_KEY_LEN && !hset_has(a->live, key.mv_data) &&
            !hset_has(&col->since, key.mv_data)) {
            uint64_t len = chunk_val_len(&val);
            if (chunk_val_drop(w, &val))
                break;
            rc = cursor_drop(w, c, &key, &val);
            if (w->err)
                break;
            dels++;
            a->chunks++;
            a->bytes += len;
            continue;
        }
        if (key.mv_size == CHUNKS_KEY_LEN && chunk_val_evacuating(w->s, &val)) {
            /* a live chunk in a mostly dead pack: to the active one */
            uint8_t k[CHUNKS_KEY_LEN], ref[PACK_REF_LEN];
            memcpy(k, key.mv_data, CHUNKS_KEY_LEN);
            if (chunk_val_move(w, &val, ref))
                break;
            MDB_val nk = {CHUNKS_KEY_LEN, k}, nv = {PACK_REF_LEN, ref};
            wtx_undo_cursor(w, c);
            rc = mdb_cursor_put(c, &nk, &nv, MDB_CURRENT);
            wtx_mut(w);
            if (rc) {
                wtx_fail(w, rc);
                break;
            }
            moves++;
            a->moved++;
        }
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    if (rc == 0 && key.mv_size == CHUNKS_KEY_LEN && !w->err)
        memcpy(a->next, key.mv_data, CHUNKS_KEY_LEN);
    else
        a->done = true;
    mdb_cursor_close(c);
    return w->err;
}

static uint64_t pause_start(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

typedef struct timed {
    int (*fn)(wtx *, void *);
    void *arg;
    uint64_t us;
} timed;

static int timed_tx(wtx *w, void *arg)
{
    timed *t = arg;
    uint64_t t0 = pause_start();
    w->drop_if_unchanged = true; /* an idle pass writes nothing */
    int rc = t->fn(w, t->arg);
    t->us = pause_start() - t0;
    return rc;
}

/* Runs fn as one write transaction and keeps the longest time fn held
 * the writer lock (the wait for the lock, which is others' time, and the
 * commit into the group, which has no I/O, are not counted). */
static int timed_write(mfs_store *s, int (*fn)(wtx *, void *), void *arg,
                       uint64_t *max_us)
{
    timed t = {fn, arg, 0};
    int rc = store_write(s, timed_tx, &t);
    if (t.us > *max_us)
        *max_us = t.us;
    /* at most half of the writer's time: a step is followed by a rest as
     * long as it (up to 5 ms), so FUSE requests and the commits that carry
     * them are not queued behind a train of steps (bench/collect/pause.sh) */
    uint64_t rest = t.us < 5000 ? t.us : 5000;
    if (rest > 100) {
        struct timespec d = {0, (long)rest * 1000};
        nanosleep(&d, NULL);
    }
    return rc;
}

static int sweep_chunks(mfs_store *s, mfs_collect_stats *st)
{
    struct collector *c = s->col;
    /* every write before the flag is committed before the snapshot; every
     * write after it notes its hashes */
    int rc = store_write(s, mark_begin_tx, NULL);
    if (!rc)
        rc = mfs_store_commit(s, 0);
    MDB_txn *txn = NULL;
    if (!rc)
        rc = store_read_begin_committed(s, &txn);
    hset live = {0};
    if (!rc) {
        rc = mark_db(s, txn, DB_VERSIONS, &live);
        if (!rc)
            rc = mark_db(s, txn, DB_DREFS, &live);
        if (!rc)
            rc = mark_db(s, txn, DB_DCHUNKS, &live);
        store_read_end(s, txn);
    }
    if (!rc && live.oom)
        rc = -ENOMEM;
    sweep sw = {.live = &live};
    while (!rc && !sw.done) {
        rc = timed_write(s, sweep_tx, &sw, &st->max_pause_us);
        pthread_mutex_lock(&c->lock);
        bool stop = c->stop;
        pthread_mutex_unlock(&c->lock);
        if (stop)
            break;
    }
    if (!rc && c->since.oom)
        rc = -ENOMEM; /* the sweep may have kept too much; never too little */
    store_write(s, mark_end_tx, NULL);
    hset_free(&live);
    st->chunks += sw.chunks;
    st->chunk_bytes += sw.bytes;
    st->moved += sw.moved;
    return rc;
}

/* ---- the undo history of live entries ---- */

/* A pass over the logged moves, oldest first, that forgets each one that
 * is the current move of a live entry once it is settled (DESIGN P9: the
 * Kleppmann tree undoes only moves later than one still arriving, and no
 * move older than a settled one can still arrive). It stops at the first
 * move not settled yet and starts there next time: a move arriving later
 * is either after that point or unsettled. Moves to the trash and
 * superseded ones are left to the tombstones and the queue. */
typedef struct mvstep {
    const mfs_vv *settled;
    /* per origin of the settled vector, the hlc of its last settled op:
     * a move of that origin is settled iff its hlc is not above it (one
     * origin stamps its ops in sequence order) */
    uint64_t *hlc;
    bool have_hlc;
    uint8_t next[MOVES_KEY_LEN];
    bool started, done;
    uint64_t forgotten;
} mvstep;

static bool move_settled(const mvstep *a, mfs_stamp st)
{
    size_t lo = 0, hi = a->settled->n;
    while (lo < hi) { /* the vector is sorted by node */
        size_t mid = (lo + hi) / 2;
        if (a->settled->e[mid].node < st.node)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < a->settled->n && a->settled->e[lo].node == st.node &&
           st.hlc <= a->hlc[lo];
}

#define MOVES_SCAN 4096 /* logged moves looked at per step */

static int moves_step_tx(wtx *w, void *arg)
{
    mvstep *a = arg;
    MDB_cursor *c;
    if (!a->have_hlc) {
        int rc = mdb_cursor_open(w->txn, w->s->db[DB_OPS], &c);
        if (rc)
            return wtx_fail(w, rc);
        for (size_t i = 0; i < a->settled->n; i++)
            a->hlc[i] = op_hlc_at(w->s, c, a->settled->e[i].node,
                                  a->settled->e[i].seq);
        mdb_cursor_close(c);
        a->have_hlc = true;
    }
    int rc = mdb_cursor_open(w->txn, w->s->db[DB_MOVES], &c);
    if (rc)
        return wtx_fail(w, rc);
    MDB_val key = {MOVES_KEY_LEN, a->next}, val;
    rc = mdb_cursor_get(c, &key, &val, a->started ? MDB_SET_RANGE : MDB_FIRST);
    a->started = true;
    mfs_stamp gone[STEP_ITEMS], last = {0, 0};
    int seen = 0, ngone = 0;
    while (rc == 0 && key.mv_size == MOVES_KEY_LEN && seen < MOVES_SCAN &&
           ngone < STEP_ITEMS) {
        mfs_stamp st = stamp_get(key.mv_data);
        if (!move_settled(a, st))
            break; /* not settled: the next pass starts here */
        /* (moves to the trash and superseded ones are left alone by
         * tree_forget_current: a look at the record first) */
        if (tree_move_live(&val))
            gone[ngone++] = st;
        last = st;
        seen++;
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    bool end = rc != 0 || key.mv_size != MOVES_KEY_LEN ||
               (seen < MOVES_SCAN && ngone < STEP_ITEMS);
    if (rc == 0 && key.mv_size == MOVES_KEY_LEN) {
        memcpy(a->next, key.mv_data, MOVES_KEY_LEN);
    } else if (seen) { /* the end: just after the last one looked at */
        if (++last.node == 0)
            last.hlc++;
        stamp_put(a->next, last);
    }
    mdb_cursor_close(c);
    for (int i = 0; i < ngone && !w->err; i++)
        if (tree_forget_current(w, gone[i]) > 0)
            a->forgotten++;
    a->done = end;
    return w->err;
}

/* Runs fn one timed write transaction at a time until *done or the
 * collector is stopped. After each step that succeeded, keep (may be
 * NULL) runs under the collector's lock: it saves where the next pass
 * starts. */
static int run_steps(mfs_store *s, int (*fn)(wtx *, void *), void *arg,
                     const bool *done,
                     void (*keep)(struct collector *, const void *),
                     uint64_t *max_us)
{
    struct collector *c = s->col;
    int rc = 0;
    while (!rc && !*done) {
        rc = timed_write(s, fn, arg, max_us);
        pthread_mutex_lock(&c->lock);
        bool stop = c->stop;
        if (!rc && keep)
            keep(c, arg);
        pthread_mutex_unlock(&c->lock);
        if (stop)
            break;
    }
    return rc;
}

static void keep_moves(struct collector *c, const void *arg)
{
    const mvstep *a = arg;
    memcpy(c->mv_next, a->next, MOVES_KEY_LEN);
    c->mv_started = a->started;
}

static int forget_settled_moves(mfs_store *s, const mfs_vv *settled,
                                mfs_collect_stats *st)
{
    struct collector *c = s->col;
    mvstep a = {.settled = settled};
    a.hlc = calloc(settled->n ? settled->n : 1, sizeof(*a.hlc));
    if (!a.hlc)
        return -ENOMEM;
    pthread_mutex_lock(&c->lock);
    memcpy(a.next, c->mv_next, MOVES_KEY_LEN);
    a.started = c->mv_started;
    pthread_mutex_unlock(&c->lock);
    int rc = run_steps(s, moves_step_tx, &a, &a.done, keep_moves,
                       &st->max_pause_us);
    st->moves += a.forgotten;
    free(a.hlc);
    return rc;
}

/* Folds the settled ops out of the log (snapshot.c), FOLD_STEP a step:
 * every member holds them, and the state has their effect. */
static int fold_settled_ops(mfs_store *s, const mfs_vv *settled,
                            mfs_collect_stats *st)
{
    fold_step a = {.settled = settled};
    int rc = run_steps(s, oplog_fold_tx, &a, &a.done, NULL, &st->max_pause_us);
    st->folded += a.folded;
    return rc;
}

/* Inode numbers of files forgotten before this build, or while the
 * kernel held them and before its FORGET (a restart): once per open, a
 * pass over the numbers drops those whose inode is gone and that the
 * kernel cannot use (ino_forget), INOS_SCAN looked at per step. */
#define INOS_SCAN 1024

typedef struct inostep {
    uint64_t next; /* the first number to look at */
    bool done;
    uint64_t dropped;
} inostep;

static int inos_step_tx(wtx *w, void *arg)
{
    inostep *a = arg;
    MDB_cursor *c;
    int rc = mdb_cursor_open(w->txn, w->s->db[DB_INO2OBJ], &c);
    if (rc)
        return wtx_fail(w, rc);
    uint8_t k[INO_LEN];
    mfs_be64_put(k, a->next);
    MDB_val key = {INO_LEN, k}, val;
    mfs_id gone[INOS_SCAN];
    int n = 0, seen = 0;
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && seen < INOS_SCAN) {
        seen++;
        a->next = mfs_be64_get(key.mv_data) + 1;
        inode_rec in;
        if (key.mv_size == INO_LEN && val.mv_size == OBJKEY_INODE_LEN &&
            ((const uint8_t *)val.mv_data)[OBJKEY_KIND] == OBJ_INODE) {
            mfs_id id = id_get((const uint8_t *)val.mv_data + OBJKEY_ID);
            if (inode_get(w->s, w->txn, id, &in) == -ENOENT)
                gone[n++] = id;
        }
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    a->done = rc != 0;
    for (int i = 0; i < n && !w->err; i++)
        ino_forget(w, gone[i]);
    a->dropped += (uint64_t)n;
    return w->err;
}

static void keep_inos(struct collector *c, const void *arg)
{
    const inostep *a = arg;
    c->inos_next = a->next;
    c->inos_done = a->done;
}

static int forget_orphan_inos(mfs_store *s, mfs_collect_stats *st)
{
    struct collector *c = s->col;
    pthread_mutex_lock(&c->lock);
    inostep a = {.next = c->inos_next, .done = c->inos_done};
    pthread_mutex_unlock(&c->lock);
    return run_steps(s, inos_step_tx, &a, &a.done, keep_inos,
                     &st->max_pause_us);
}

/* ---- a pass ---- */

/* How far the trash is over its share of the file system: chunk bytes
 * held beyond the live files' bytes (the census), less share_pct of the
 * file system's size (*bound). */
static uint64_t trash_excess(mfs_store *s, uint32_t share_pct,
                             uint64_t *bound_out)
{
    struct statvfs v;
    *bound_out = 0;
    if (share_pct >= 100 || statvfs(s->dir, &v) != 0 || !v.f_blocks)
        return 0;
    uint64_t bound = (uint64_t)v.f_blocks * v.f_frsize / 100 * share_pct;
    *bound_out = bound;
    MDB_txn *txn;
    if (store_read_begin_committed(s, &txn))
        return 0;
    uint64_t held = packs_held(s, txn), out = 0;
    struct census c;
    if (held > bound && census_get(s, txn, &c) == 0) {
        uint64_t live = (uint64_t)c.bytes;
        out = held > live + bound ? held - live - bound : 0;
    }
    store_read_end(s, txn);
    return out;
}

/* The trash's floor that frees `need` bytes: the time of the item at
 * which the trash's items, oldest first (those queued after both the
 * current floor and the retention's start), add up to need; 0 if the
 * whole trash does not. Sizes are item_bytes' estimates. */
static uint64_t floor_for(mfs_store *s, uint64_t floor, uint64_t since,
                          uint64_t need)
{
    MDB_txn *txn;
    if (store_read_begin_committed(s, &txn))
        return 0;
    MDB_cursor *c;
    uint64_t out = 0, sum = 0;
    if (mdb_cursor_open(txn, s->db[DB_GCQ], &c) == 0) {
        MDB_val key, val;
        int r = mdb_cursor_get(c, &key, &val, MDB_FIRST);
        for (; r == 0; r = mdb_cursor_get(c, &key, &val, MDB_NEXT)) {
            if (key.mv_size != GCQ_KEY_LEN || val.mv_size != GCQ_VAL_LEN)
                continue; /* a logged move: no bytes */
            const uint8_t *kb = key.mv_data;
            uint64_t t = mfs_be64_get(kb + GCQ_KEY_TIME);
            if (t <= floor || t <= since)
                continue; /* goes anyway */
            sum += item_bytes(s, txn, id_get(kb + GCQ_KEY_ID),
                              stamp_get(kb + GCQ_KEY_STAMP));
            if (sum >= need) {
                out = t;
                break;
            }
        }
        mdb_cursor_close(c);
    }
    store_read_end(s, txn);
    return out;
}

/* The trash is kept within the smallest share of a disk in the mesh, the
 * same on every member: a node whose trash is `excess` over its share
 * (and then some, so that a pass does not raise it again at once) raises
 * its floor (a register that replicates, replica.c), and every member
 * frees the items queued up to the largest floor. The oldest go first,
 * as on one node, and the items are the same everywhere, since they are
 * queued by the ops. Returns the floor this pass uses. */
static uint64_t trash_floor_update(mfs_store *s, const step *a, uint64_t excess,
                                   uint64_t bound)
{
    uint64_t floor = 0;
    if (store_trash_floor(s, &floor))
        return 0;
    if (!excess)
        return floor;
    uint64_t since = a->now > a->retention ? a->now - a->retention : 0;
    uint64_t want = floor_for(s, floor, since, excess + bound / 20);
    if (!want) /* the trash is all of it: empty it */
        want = a->now > GRACE_MS ? a->now - GRACE_MS : 0;
    if (want <= floor)
        return floor;
    int rc = store_trash_floor_raise(s, want);
    if (rc) {
        mfs_log(LOG_WARNING,
                "collection: cannot set the trash's floor in store %s: %s",
                s->dir, strerror(-rc));
        return floor;
    }
    mfs_log(LOG_NOTICE,
            "collection: the trash is %" PRIu64 " KiB over its share of this "
            "node's disk (-o trash-share): every member now frees what was "
            "deleted or overwritten more than %" PRIu64 " s ago",
            excess >> 10, a->now > want ? (a->now - want) / 1000 : 0);
    return want;
}

static bool under_pressure(mfs_store *s)
{
    struct statvfs v;
    if (statvfs(s->dir, &v) != 0 || !v.f_blocks)
        return false;
    return v.f_bavail * 100 < v.f_blocks * PRESSURE_FREE_PCT;
}

/* Does this store hold the ops that made the mesh (its lost+found)? */
static bool mesh_reached(mfs_store *s)
{
    MDB_txn *txn;
    if (store_read_begin_committed(s, &txn))
        return false;
    entry_rec er;
    bool yes = entry_get(s, txn, MFS_ID_LOSTFOUND, &er) == 0 && er.exists;
    store_read_end(s, txn);
    return yes;
}

int mfs_store_collect_now(mfs_store *s, mfs_collect_stats *out)
{
    struct collector *c = s->col;
    if (out)
        memset(out, 0, sizeof(*out));
    if (!c)
        return -EROFS;
    step a = {0};
    pthread_mutex_lock(&c->lock);
    bool alone = c->cfg.alone;
    pthread_mutex_unlock(&c->lock);
    if (alone) {
        mfs_vv own;
        if (mfs_store_vv(s, &own) == 0) {
            mfs_store_collect_settled(s, &own);
            mfs_vv_free(&own);
        }
    }
    pthread_mutex_lock(&c->lock);
    bool have = c->have_settled;
    a.retention = c->cfg.retention_ms;
    pthread_mutex_unlock(&c->lock);
    /* A new member that has not reached the mesh yet (it lacks the ops
     * that made it: lost+found) does not know its members: what it and
     * the peers it met hold may be stable among them but not for the
     * mesh, and what it collected (or folded out of its op log) a member
     * it never heard of could still need. */
    if (have && !mesh_reached(s))
        have = false;
    pthread_mutex_lock(&c->lock);
    if (have && c->settled.n) {
        a.settled.e = malloc(c->settled.n * sizeof(*a.settled.e));
        if (a.settled.e) {
            memcpy(a.settled.e, c->settled.e,
                   c->settled.n * sizeof(*a.settled.e));
            a.settled.n = c->settled.n;
        }
    }
    pthread_mutex_unlock(&c->lock);
    a.now = wall_ms(s);
    a.pressure = under_pressure(s);
    pthread_mutex_lock(&c->lock);
    uint32_t share = c->cfg.share_pct ? c->cfg.share_pct
                                      : MFS_COLLECT_SHARE_DEFAULT_PCT;
    pthread_mutex_unlock(&c->lock);
    /* trash_excess reads what is committed: what calls before this one
     * did (an earlier pass's drops, in a group not committed yet) is
     * committed first, or a pass right after another drops again what
     * the first already dropped (test_store_enospc test_trash_share, 1-2
     * runs in 10 with group commit on a busy machine) */
    int crc = mfs_store_commit(s, 0);
    uint64_t bound = 0;
    a.st.trash_over = a.pressure || crc ? 0 : trash_excess(s, share, &bound);
    /* raised only by a node that knows its members (it collects): the
     * floor is the mesh's */
    a.floor = have ? trash_floor_update(s, &a, a.st.trash_over, bound) : 0;
    int rc = 0;
    uint64_t t0 = mono_ms();
    if (have)
        rc = run_steps(s, step_tx, &a, &a.done, NULL, &a.st.max_pause_us);
    if (have && !rc)
        rc = forget_settled_moves(s, &a.settled, &a.st);
    if (have && !rc) /* after the moves: they look their ops' hlc up */
        rc = fold_settled_ops(s, &a.settled, &a.st);
    if (!rc)
        rc = forget_orphan_inos(s, &a.st);
    mfs_vv_free(&a.settled);
    pthread_mutex_lock(&c->lock);
    bool sweep_needed = c->sweep_needed || a.st.versions;
    c->sweep_needed = false;
    pthread_mutex_unlock(&c->lock);
    if (!rc && sweep_needed) {
        rc = sweep_chunks(s, &a.st);
        if (rc) {
            pthread_mutex_lock(&c->lock);
            c->sweep_needed = true;
            pthread_mutex_unlock(&c->lock);
        }
    }
    if (!rc && (sweep_needed || packs_doomed(s))) {
        /* packs emptied by the sweep go; mostly dead ones are evacuated
         * by the next sweep */
        bool again = false;
        rc = packs_tidy(s, timed_write, &a.st.max_pause_us, &again,
                        &a.st.disk_freed);
        if (again) {
            pthread_mutex_lock(&c->lock);
            c->sweep_needed = true;
            c->wake = true;
            pthread_mutex_unlock(&c->lock);
        }
    }
    a.st.held_back = a.held;
    a.st.held_origin = a.held_origin;
    a.st.pass_ms = mono_ms() - t0;
    pthread_mutex_lock(&c->lock);
    c->st.passes++;
    c->st.versions += a.st.versions;
    c->st.inodes += a.st.inodes;
    c->st.chunks += a.st.chunks;
    c->st.chunk_bytes += a.st.chunk_bytes;
    c->st.moved += a.st.moved;
    c->st.early += a.st.early;
    c->st.tombstones += a.st.tombstones;
    c->st.moves += a.st.moves;
    c->st.folded += a.st.folded;
    c->st.trash_over = a.st.trash_over;
    c->st.disk_freed += a.st.disk_freed;
    c->st.pinned = a.st.pinned;
    c->st.held_back = a.held;
    c->st.held_origin = a.held_origin;
    c->st.pass_ms = a.st.pass_ms;
    if (a.st.max_pause_us > c->st.max_pause_us)
        c->st.max_pause_us = a.st.max_pause_us;
    c->st.last_error = rc;
    c->st.settled = have;
    pthread_mutex_unlock(&c->lock);
    if (out) {
        *out = a.st;
        out->settled = have;
        out->last_error = rc;
    }
    return rc;
}

/* ---- the trash ---- */

/* The path a directory has, or had when it was deleted (through deleted
 * parents too); -ENOENT when that cannot be told. */
static int dir_path(mfs_store *s, MDB_txn *txn, mfs_id dir, char *out,
                    size_t cap, int depth)
{
    if (view_path(s, txn, dir, out, cap) == 0)
        return 0;
    entry_rec er;
    mfs_op mv;
    if (depth > 64 || entry_get(s, txn, dir, &er) != 0 || !er.exists ||
        !id_eq(er.parent, MFS_ID_TRASH) ||
        tree_last_move(s, txn, er.st, &mv, NULL) != 0 || id_eq(mv.from, dir))
        return -ENOENT;
    char up[3584];
    int rc = dir_path(s, txn, mv.from, up, sizeof up, depth + 1);
    if (rc)
        return rc;
    size_t ul = strcmp(up, "/") ? strlen(up) : 0, nl = strlen(er.name);
    if (ul + nl + 2 > cap)
        return -ENAMETOOLONG;
    memcpy(out, up, ul);
    out[ul] = '/';
    memcpy(out + ul + 1, er.name, nl + 1);
    return 0;
}

/* Where a file with no name was: the directory its entry was deleted from
 * and its name ("?/NAME" when that cannot be told). */
static void deleted_path(mfs_store *s, MDB_txn *txn, mfs_id inode, char *out,
                         size_t cap)
{
    snprintf(out, cap, "?");
    MDB_cursor *c;
    if (mdb_cursor_open(txn, s->db[DB_ILINKS], &c))
        return;
    uint8_t k[ID_KEY_LEN];
    id_put(k, inode);
    MDB_val key = {ID_KEY_LEN, k}, val;
    mfs_stamp best = {0, 0};
    int rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size == PAIR_KEY_LEN &&
           !memcmp(key.mv_data, k, ID_LEN)) {
        entry_rec er;
        mfs_op mv;
        if (entry_get(s, txn, id_get((uint8_t *)key.mv_data + PAIR_KEY_B),
                      &er) == 0 &&
            er.exists && mfs_stamp_cmp(er.st, best) > 0) {
            best = er.st;
            char dir[3584]; /* + "/" + a name fits in out */
            if (tree_last_move(s, txn, er.st, &mv, NULL) != 0 ||
                dir_path(s, txn, mv.from, dir, sizeof dir, 0) != 0)
                snprintf(dir, sizeof dir, "?");
            snprintf(out, cap, "%s%s%s", dir, strcmp(dir, "/") ? "/" : "",
                     er.name);
        }
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
}

int mfs_store_trash_list(mfs_store *s,
                         int (*cb)(void *arg, const mfs_trash_item *it),
                         void *arg)
{
    MDB_txn *txn;
    int rc = store_read_begin_scan(s, &txn);
    if (rc)
        return rc;
    MDB_cursor *c;
    rc = mdb_to_errno(mdb_cursor_open(txn, s->db[DB_GCQ], &c));
    if (rc) {
        store_read_end(s, txn);
        return rc;
    }
    mfs_trash_item *it = malloc(sizeof(*it));
    if (!it) {
        mdb_cursor_close(c);
        store_read_end(s, txn);
        return -ENOMEM;
    }
    MDB_val key, val;
    int r = mdb_cursor_get(c, &key, &val, MDB_FIRST);
    int stop = 0;
    while (r == 0 && !stop) {
        if (key.mv_size != GCQ_KEY_LEN || val.mv_size != GCQ_VAL_LEN)
            goto next;
        memset(it, 0, sizeof(*it));
        it->inode = id_get((uint8_t *)key.mv_data + GCQ_KEY_ID);
        it->version = stamp_get((uint8_t *)key.mv_data + GCQ_KEY_STAMP);
        it->cause = stamp_get((uint8_t *)val.mv_data + GCQ_VAL_CAUSE);
        if (stamp_eq(it->cause, it->version))
            goto next; /* a DROP version: nothing to give back */
        it->deleted = !has_links(s, txn, it->inode);
        if (!it->version.hlc && !it->version.node) {
            /* a deleted file: its newest content */
            mfs_stamp heads[MFS_MAX_HEADS];
            int n = content_heads(s, txn, it->inode, heads, MFS_MAX_HEADS);
            if (n <= 0 || !it->deleted)
                goto next; /* collected, or it came back */
            it->version = heads[n - 1];
        }
        uint8_t h[HASH_LEN];
        if (content_version_hash(s, txn, it->inode, it->version, h,
                                 &it->size) != 0)
            goto next; /* not arrived, or collected */
        it->have = version_absent(s, txn, it->inode, it->version) == 0;
        if (it->deleted) {
            deleted_path(s, txn, it->inode, it->path, sizeof it->path);
        } else {
            mfs_id dir;
            char name[MFS_NAME_MAX + 1], dp[3584];
            if (view_primary(s, txn, it->inode, NULL, &dir, name) != 0 ||
                view_path(s, txn, dir, dp, sizeof dp) != 0)
                goto next;
            snprintf(it->path, sizeof it->path, "%s%s%s", dp,
                     strcmp(dp, "/") ? "/" : "", name);
        }
        stop = cb(arg, it);
    next:
        r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    free(it);
    mdb_cursor_close(c);
    store_read_end(s, txn);
    return 0;
}

/* ---- the background thread ---- */

static void *collector_main(void *arg)
{
    mfs_store *s = arg;
    pthread_setname_np(pthread_self(), "mfs-collect"); /* top, perf */
    struct collector *c = s->col;
    uint64_t last = 0;
    pthread_mutex_lock(&c->lock);
    while (!c->stop) {
        uint32_t period = c->cfg.period_ms ? c->cfg.period_ms : 1000;
        if (!c->wake) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)period * 1000000;
            ts.tv_sec += (time_t)(ns / 1000000000);
            ts.tv_nsec = (long)(ns % 1000000000);
            pthread_cond_timedwait(&c->cond, &c->lock, &ts);
        }
        if (c->stop)
            break;
        uint64_t now = mono_ms();
        /* at most one pass per 200 ms: a busy mesh settles every few ms */
        if (now - last < 200) {
            pthread_mutex_unlock(&c->lock);
            struct timespec d = {0, (long)(200 - (now - last)) * 1000000};
            nanosleep(&d, NULL);
            pthread_mutex_lock(&c->lock);
            continue;
        }
        c->wake = false;
        pthread_mutex_unlock(&c->lock);
        int rc = mfs_store_collect_now(s, NULL);
        if (rc && rc != -ESHUTDOWN)
            mfs_log(LOG_WARNING,
                    "collection: a pass over store %s failed: %s; retried "
                    "within %u ms",
                    s->dir, strerror(-rc), period);
        last = mono_ms();
        pthread_mutex_lock(&c->lock);
    }
    pthread_mutex_unlock(&c->lock);
    return NULL;
}

int mfs_store_collect_start(mfs_store *s, const mfs_collect_config *cfg)
{
    struct collector *c = s->col;
    if (!c)
        return -EROFS;
    mfs_store_collect_set(s, cfg);
    pthread_mutex_lock(&c->lock);
    int rc = 0;
    if (!c->started) {
        c->stop = false;
        rc = -pthread_create(&c->thread, NULL, collector_main, s);
        c->started = rc == 0;
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

void mfs_store_collect_stop(mfs_store *s)
{
    struct collector *c = s->col;
    if (!c)
        return;
    pthread_mutex_lock(&c->lock);
    bool started = c->started;
    c->stop = true;
    pthread_cond_signal(&c->cond);
    pthread_mutex_unlock(&c->lock);
    if (started)
        pthread_join(c->thread, NULL);
    pthread_mutex_lock(&c->lock);
    c->started = false;
    pthread_mutex_unlock(&c->lock);
}
