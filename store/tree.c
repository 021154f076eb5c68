/*
 * tree.c - the namespace as a replicated tree: the move operation of
 * Kleppmann et al., "A highly-available move operation for replicated trees"
 * (2021). Every move is logged with the state it replaced; a move older than
 * some logged ones is applied by undoing the later ones, doing it, and
 * redoing them, so every replica ends as if all moves ran in stamp order. A
 * move that would make a node its own ancestor is skipped (logged, no
 * effect). Create is a move in, unlink a move to the trash.
 *
 * This is the raw tree only; what users see (names, conflicts, lost+found)
 * is derived from it in view.c. Must not read anything but the raw tables.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

typedef struct move_rec {
    bool skipped;
    entry_rec prior;
    mfs_id entry, inode, parent, from;
    char name[MFS_NAME_MAX + 1];
    size_t namelen;
    uint32_t nseen;
    const uint8_t *seen; /* the op's own: points into the LMDB value */
    /* A move into the trash of an entry that a move into the trash had
     * put there: what every such delete of the entry had seen, its own
     * first (tree_last_move gives this). Content any delete of the entry
     * had seen is deleted content: it does not bring the entry back,
     * whichever delete came last (replication simulator, long seed 1196:
     * a node waited for good for a version others collected under the
     * earlier delete). A function of the moves in stamp order, so every
     * node computes the same; records before this have only their own. */
    uint32_t nall;
    const uint8_t *all;
} move_rec;

int entry_get(mfs_store *s, MDB_txn *txn, mfs_id e, entry_rec *out)
{
    uint8_t k[ID_KEY_LEN];
    id_put(k, e);
    MDB_val v;
    memset(out, 0, sizeof(*out));
    int rc = tget(s, txn, DB_ENTRIES, k, ID_KEY_LEN, &v);
    if (rc)
        return rc;
    mfs_rbuf r;
    mfs_rbuf_init(&r, v.mv_data, v.mv_size);
    out->parent = mfs_rget_id(&r);
    out->inode = mfs_rget_id(&r);
    out->st = mfs_rget_stamp(&r);
    out->from = mfs_rget_id(&r);
    SCHEMA_RAT(&r, ENTRY_NAME);
    size_t n;
    const uint8_t *name = mfs_get_str16(&r, &n, MFS_NAME_MAX);
    if (r.err)
        return -EIO;
    memcpy(out->name, name, n);
    out->name[n] = 0;
    out->exists = true;
    return 0;
}

static int entry_put(wtx *w, mfs_id e, const entry_rec *er)
{
    uint8_t k[ID_KEY_LEN], buf[128 + MFS_NAME_MAX];
    id_put(k, e);
    mfs_wbuf wb;
    mfs_wbuf_init(&wb, buf, sizeof(buf));
    mfs_wput_id(&wb, er->parent);
    mfs_wput_id(&wb, er->inode);
    mfs_wput_stamp(&wb, er->st);
    mfs_wput_id(&wb, er->from);
    SCHEMA_WAT(&wb, ENTRY_NAME);
    mfs_put_str16(&wb, er->name, strlen(er->name));
    if (wb.err)
        return wtx_fail(w, -EIO);
    tput(w, DB_ENTRIES, k, ID_KEY_LEN, buf, wb.len);
    uint8_t pk[PAIR_KEY_LEN];
    pair_key_put(pk, er->parent, e);
    tput(w, DB_RCHILD, pk, PAIR_KEY_LEN, "", 0);
    if (id_eq(er->parent, MFS_ID_TRASH) && !id_zero(er->from)) {
        pair_key_put(pk, er->from, e);
        tput(w, DB_TFROM, pk, PAIR_KEY_LEN, "", 0);
    }
    pair_key_put(pk, er->inode, e);
    tput(w, DB_ILINKS, pk, PAIR_KEY_LEN, "", 0);
    return w->err;
}

static int entry_remove(wtx *w, mfs_id e, const entry_rec *er)
{
    uint8_t k[ID_KEY_LEN], pk[PAIR_KEY_LEN];
    id_put(k, e);
    tdel(w, DB_ENTRIES, k, ID_KEY_LEN);
    pair_key_put(pk, er->parent, e);
    tdel(w, DB_RCHILD, pk, PAIR_KEY_LEN);
    if (id_eq(er->parent, MFS_ID_TRASH) && !id_zero(er->from)) {
        pair_key_put(pk, er->from, e);
        tdel(w, DB_TFROM, pk, PAIR_KEY_LEN);
    }
    pair_key_put(pk, er->inode, e);
    tdel(w, DB_ILINKS, pk, PAIR_KEY_LEN);
    return w->err;
}

bool tree_is_ancestor(mfs_store *s, MDB_txn *txn, mfs_id anc, mfs_id d)
{
    mfs_id x = d;
    for (int depth = 0; depth < 1 << 20; depth++) {
        if (id_eq(x, anc))
            return true;
        if (id_eq(x, MFS_ID_ROOT) || id_eq(x, MFS_ID_TRASH))
            return false;
        entry_rec er;
        if (entry_get(s, txn, x, &er))
            return false;
        x = er.parent;
    }
    return true; /* deeper than any real tree: treat as a cycle */
}

static int move_rec_put(wtx *w, mfs_stamp st, const move_rec *m)
{
    size_t cap = 512 + 2 * MFS_NAME_MAX + (size_t)m->nseen * STAMP_LEN +
                 (size_t)m->nall * STAMP_LEN;
    uint8_t *buf = malloc(cap);
    if (!buf)
        return wtx_fail(w, -ENOMEM);
    mfs_wbuf wb;
    mfs_wbuf_init(&wb, buf, cap);
    mfs_put_u8(&wb, m->skipped);
    mfs_put_u8(&wb, m->prior.exists);
    SCHEMA_WAT(&wb, MOVE_PRIOR);
    mfs_wput_id(&wb, m->prior.parent);
    mfs_wput_id(&wb, m->prior.inode);
    mfs_wput_stamp(&wb, m->prior.st);
    mfs_wput_id(&wb, m->prior.from);
    SCHEMA_WAT(&wb, MOVE_PRIOR_NAME);
    mfs_put_str16(&wb, m->prior.name, strlen(m->prior.name));
    SCHEMA_WAT(&wb, MOVE_OP_AT(strlen(m->prior.name)));
    mfs_wput_id(&wb, m->entry);
    mfs_wput_id(&wb, m->inode);
    mfs_wput_id(&wb, m->parent);
    mfs_wput_id(&wb, m->from);
    SCHEMA_WAT(&wb, MOVE_OP_NAME(strlen(m->prior.name)));
    mfs_put_str16(&wb, m->name, m->namelen);
    mfs_put_u32(&wb, m->nseen);
    mfs_put_bytes(&wb, m->seen, (size_t)m->nseen * STAMP_LEN);
    if (m->nall > m->nseen) {
        mfs_put_u32(&wb, m->nall);
        mfs_put_bytes(&wb, m->all, (size_t)m->nall * STAMP_LEN);
    }
    uint8_t k[MOVES_KEY_LEN];
    stamp_put(k, st);
    if (!wb.err)
        tput(w, DB_MOVES, k, MOVES_KEY_LEN, buf, wb.len);
    free(buf);
    return wb.err ? wtx_fail(w, -EIO) : w->err;
}

static int move_rec_decode(const MDB_val *v, move_rec *m)
{
    mfs_rbuf r;
    mfs_rbuf_init(&r, v->mv_data, v->mv_size);
    memset(m, 0, sizeof(*m));
    m->skipped = mfs_get_u8(&r);
    m->prior.exists = mfs_get_u8(&r);
    SCHEMA_RAT(&r, MOVE_PRIOR);
    m->prior.parent = mfs_rget_id(&r);
    m->prior.inode = mfs_rget_id(&r);
    m->prior.st = mfs_rget_stamp(&r);
    m->prior.from = mfs_rget_id(&r);
    SCHEMA_RAT(&r, MOVE_PRIOR_NAME);
    size_t n;
    const uint8_t *p = mfs_get_str16(&r, &n, MFS_NAME_MAX);
    if (p) {
        memcpy(m->prior.name, p, n);
        m->prior.name[n] = 0;
    }
    SCHEMA_RAT(&r, MOVE_OP_AT(n));
    m->entry = mfs_rget_id(&r);
    m->inode = mfs_rget_id(&r);
    m->parent = mfs_rget_id(&r);
    m->from = mfs_rget_id(&r);
    p = mfs_get_str16(&r, &n, MFS_NAME_MAX);
    if (p) {
        memcpy(m->name, p, n);
        m->name[n] = 0;
        m->namelen = n;
    }
    m->nseen = mfs_get_u32(&r);
    m->seen = mfs_get_bytes(&r, (size_t)m->nseen * STAMP_LEN);
    if (!r.err && mfs_rbuf_left(&r)) {
        m->nall = mfs_get_u32(&r);
        m->all = mfs_get_bytes(&r, (size_t)m->nall * STAMP_LEN);
    } else {
        m->nall = m->nseen;
        m->all = m->seen;
    }
    return r.err ? -EIO : 0;
}

static int move_rec_get(mfs_store *s, MDB_txn *txn, mfs_stamp st, move_rec *m)
{
    uint8_t k[MOVES_KEY_LEN];
    stamp_put(k, st);
    MDB_val v;
    int rc = tget(s, txn, DB_MOVES, k, MOVES_KEY_LEN, &v);
    return rc ? rc : move_rec_decode(&v, m);
}

bool tree_left_since(mfs_store *s, MDB_txn *txn, mfs_id dir, uint64_t hlc)
{
    MDB_cursor *c;
    if (mdb_cursor_open(txn, s->db[DB_MOVES], &c))
        return true;
    MDB_val key, val;
    bool r = false;
    int n = 0, rc = mdb_cursor_get(c, &key, &val, MDB_LAST);
    for (; rc == 0 && !r; rc = mdb_cursor_get(c, &key, &val, MDB_PREV)) {
        if (key.mv_size != MOVES_KEY_LEN || stamp_get(key.mv_data).hlc <= hlc)
            break;
        move_rec m;
        r = ++n > 4096 || move_rec_decode(&val, &m) != 0 ||
            (!m.skipped && m.prior.exists && id_eq(m.prior.parent, dir));
    }
    mdb_cursor_close(c);
    return r;
}

bool tree_move_live(const MDB_val *v)
{
    move_rec m;
    return move_rec_decode(v, &m) == 0 && !m.skipped &&
           !id_eq(m.parent, MFS_ID_TRASH);
}

int tree_last_move(mfs_store *s, MDB_txn *txn, mfs_stamp st, mfs_op *op,
                   MDB_val *raw)
{
    (void)raw;
    move_rec m;
    int rc = move_rec_get(s, txn, st, &m);
    if (rc)
        return rc;
    memset(op, 0, sizeof(*op));
    op->type = OP_MOVE;
    op->st = st;
    op->obj = m.entry;
    op->inode = m.inode;
    op->parent = m.parent;
    op->from = m.from;
    op->nseen = m.nall;
    op->seen = m.all;
    return 0;
}

int tree_names(mfs_store *s, MDB_txn *txn, mfs_id inode, mfs_id *out, int max)
{
    MDB_cursor *c;
    if (mdb_cursor_open(txn, s->db[DB_ILINKS], &c))
        return -EIO;
    uint8_t k[ID_KEY_LEN];
    id_put(k, inode);
    MDB_val key = {ID_KEY_LEN, k}, val;
    int n = 0;
    int rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && n <= max && key.mv_size == PAIR_KEY_LEN &&
           !memcmp(key.mv_data, k, ID_LEN)) {
        if (n < max)
            out[n] = id_get((uint8_t *)key.mv_data + PAIR_KEY_B);
        n++;
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    return n;
}

int tree_forget_entry(wtx *w, mfs_id e)
{
    entry_rec er;
    int rc = entry_get(w->s, w->txn, e, &er);
    if (rc)
        return rc == -ENOENT ? 0 : wtx_fail(w, rc);
    /* the logged moves of e: each names the state it replaced, so the
     * chain runs from its current move back to the one that created it */
    mfs_stamp st = er.st;
    for (int n = 0; n < 1 << 16 && !w->err; n++) {
        move_rec m;
        if (move_rec_get(w->s, w->txn, st, &m) != 0 || !id_eq(m.entry, e))
            break;
        bool more = m.prior.exists;
        mfs_stamp prior = m.prior.st;
        uint8_t k[MOVES_KEY_LEN];
        stamp_put(k, st);
        tdel(w, DB_MOVES, k, MOVES_KEY_LEN);
        if (!more)
            break;
        st = prior;
    }
    entry_remove(w, e, &er);
    view_touch_entry(w, e);
    return w->err;
}

int tree_forget_move(wtx *w, mfs_id e, mfs_stamp st)
{
    entry_rec er;
    int rc = entry_get(w->s, w->txn, e, &er);
    if (rc && rc != -ENOENT)
        return wtx_fail(w, rc);
    if (rc == 0 && stamp_eq(er.st, st))
        return 0; /* current again (its successor was undone) */
    move_rec m;
    if (move_rec_get(w->s, w->txn, st, &m) != 0 || !id_eq(m.entry, e))
        return 0;
    uint8_t k[MOVES_KEY_LEN];
    stamp_put(k, st);
    return tdel(w, DB_MOVES, k, MOVES_KEY_LEN) ? w->err : 1;
}

int tree_forget_current(wtx *w, mfs_stamp st)
{
    move_rec m;
    if (move_rec_get(w->s, w->txn, st, &m) != 0 || m.skipped)
        return 0;
    entry_rec er;
    if (entry_get(w->s, w->txn, m.entry, &er) != 0 || !er.exists ||
        !stamp_eq(er.st, st) || id_eq(er.parent, MFS_ID_TRASH))
        return 0;
    uint8_t k[MOVES_KEY_LEN];
    stamp_put(k, st);
    return tdel(w, DB_MOVES, k, MOVES_KEY_LEN) ? w->err : 1;
}

#define MOVE_ALL_MAX MFS_MAX_SEEN

/* m's own seen list, then what the move that put the entry into the
 * trash before it (if it is there now) had in all, without repeats, into
 * a buffer the caller frees (*out NULL: just the own list). */
static int seen_union(wtx *w, const move_rec *m, const entry_rec *cur,
                      uint8_t **out, uint32_t *n)
{
    *out = NULL;
    *n = m->nseen;
    move_rec pm;
    if (!id_eq(m->parent, MFS_ID_TRASH) || !cur->exists ||
        !id_eq(cur->parent, MFS_ID_TRASH) ||
        move_rec_get(w->s, w->txn, cur->st, &pm) || !pm.nall)
        return 0;
    size_t cap = (size_t)m->nseen + pm.nall;
    if (cap > MOVE_ALL_MAX)
        cap = MOVE_ALL_MAX;
    uint8_t *u = malloc(cap * STAMP_LEN);
    if (!u)
        return wtx_fail(w, -ENOMEM);
    uint32_t k = 0;
    for (uint32_t i = 0; i < m->nseen && k < cap; i++)
        memcpy(u + (size_t)(k++) * STAMP_LEN, m->seen + (size_t)i * STAMP_LEN,
               STAMP_LEN);
    for (uint32_t i = 0; i < pm.nall && k < cap; i++) {
        const uint8_t *x = pm.all + (size_t)i * STAMP_LEN;
        bool dup = false;
        for (uint32_t j = 0; j < k && !dup; j++)
            dup = !memcmp(u + (size_t)j * STAMP_LEN, x, STAMP_LEN);
        if (!dup)
            memcpy(u + (size_t)(k++) * STAMP_LEN, x, STAMP_LEN);
    }
    *out = u;
    *n = k;
    return 0;
}

/* An entry leaves (cur: its state before move m, stamped st) a deleted
 * directory that kept its tombstone for it (a file created in it
 * concurrently with its delete, shown in lost+found: collect.c
 * drop_tombstone): the directory is queued again, and goes once this move
 * is settled if no raw child is left. */
static void queue_left_dir(wtx *w, const entry_rec *cur, const move_rec *m,
                           mfs_stamp st)
{
    entry_rec pe;
    if (id_eq(cur->parent, m->parent) || id_eq(cur->parent, MFS_ID_TRASH) ||
        id_eq(cur->parent, MFS_ID_ROOT) ||
        entry_get(w->s, w->txn, cur->parent, &pe) != 0 ||
        !id_eq(pe.parent, MFS_ID_TRASH))
        return;
    gc_queue(w, cur->parent, (mfs_stamp){0, 0}, st);
}

/* do_op of the paper: apply one move to the current state and log it. */
static int do_move(wtx *w, mfs_stamp st, move_rec *m)
{
    entry_rec cur;
    int rc = entry_get(w->s, w->txn, m->entry, &cur);
    if (rc && rc != -ENOENT)
        return wtx_fail(w, rc);
    m->prior = cur;
    uint8_t *all = NULL;
    if (seen_union(w, m, &cur, &all, &m->nall))
        return w->err;
    m->all = all ? all : m->seen;
    m->skipped = !id_eq(m->parent, MFS_ID_TRASH) &&
                 tree_is_ancestor(w->s, w->txn, m->entry, m->parent);
    /* the log's undo history: the move that set the state this one
     * replaces (or this one, if skipped) is current no more; collection
     * forgets it once this move is settled */
    if (m->skipped)
        gc_queue_move(w, m->entry, st, st);
    else if (cur.exists)
        gc_queue_move(w, m->entry, cur.st, st);
    if (!m->skipped) {
        if (cur.exists) {
            entry_remove(w, m->entry, &cur);
            queue_left_dir(w, &cur, m, st);
        }
        entry_rec nr = {.exists = true,
                        .parent = m->parent,
                        .inode = m->inode,
                        .st = st,
                        .from = m->from};
        memcpy(nr.name, m->name, m->namelen);
        nr.name[m->namelen] = 0;
        entry_put(w, m->entry, &nr);
        view_touch_entry(w, m->entry);
    }
    move_rec_put(w, st, m);
    free(all);
    return w->err;
}

static int undo_move(wtx *w, const move_rec *m)
{
    if (m->skipped)
        return w->err;
    entry_rec cur;
    if (entry_get(w->s, w->txn, m->entry, &cur) == 0)
        entry_remove(w, m->entry, &cur);
    if (m->prior.exists)
        entry_put(w, m->entry, &m->prior);
    view_touch_entry(w, m->entry);
    return w->err;
}

/* Undoes every logged move later than t, newest first; returns their stamps
 * oldest first in *out (caller frees). */
static int undo_after(wtx *w, mfs_stamp t, mfs_stamp **out, size_t *nout)
{
    *out = NULL;
    *nout = 0;
    MDB_cursor *c;
    int rc = mdb_cursor_open(w->txn, w->s->db[DB_MOVES], &c);
    if (rc)
        return wtx_fail(w, rc);
    uint8_t k[MOVES_KEY_LEN];
    stamp_put(k, t);
    MDB_val key = {MOVES_KEY_LEN, k}, val;
    size_t cap = 0;
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (rc == 0) {
        mfs_stamp s2 = stamp_get(key.mv_data);
        if (mfs_stamp_cmp(s2, t) > 0) {
            if (*nout == cap) {
                cap = cap ? cap * 2 : 16;
                mfs_stamp *nv = realloc(*out, cap * sizeof(**out));
                if (!nv) {
                    mdb_cursor_close(c);
                    return wtx_fail(w, -ENOMEM);
                }
                *out = nv;
            }
            (*out)[(*nout)++] = s2;
        }
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    for (size_t i = *nout; i-- > 0;) {
        move_rec m;
        if (move_rec_get(w->s, w->txn, (*out)[i], &m))
            return wtx_fail(w, -EIO);
        undo_move(w, &m);
    }
    return w->err;
}

static int redo_move(wtx *w, mfs_stamp st)
{
    move_rec m;
    if (move_rec_get(w->s, w->txn, st, &m))
        return wtx_fail(w, -EIO);
    /* m.seen points into the LMDB value that do_move overwrites: copy it */
    uint8_t *seen = NULL;
    if (m.nseen) {
        seen = malloc((size_t)m.nseen * STAMP_LEN);
        if (!seen)
            return wtx_fail(w, -ENOMEM);
        memcpy(seen, m.seen, (size_t)m.nseen * STAMP_LEN);
        m.seen = seen;
    }
    do_move(w, st, &m);
    free(seen);
    return w->err;
}

static void move_from_op(move_rec *m, const mfs_op *op)
{
    memset(m, 0, sizeof(*m));
    m->entry = op->obj;
    m->inode = op->inode;
    m->parent = op->parent;
    m->from = op->from;
    memcpy(m->name, op->name, op->namelen);
    m->namelen = op->namelen;
    m->nseen = op->nseen;
    m->seen = op->seen;
}

int tree_apply_move(wtx *w, const mfs_op *op)
{
    if (w->err)
        return w->err;
    uint8_t k[MOVES_KEY_LEN];
    stamp_put(k, op->st);
    MDB_val v;
    if (tget(w->s, w->txn, DB_MOVES, k, MOVES_KEY_LEN, &v) == 0)
        return 0; /* already applied */
    mfs_stamp *later;
    size_t nlater;
    if (undo_after(w, op->st, &later, &nlater))
        return w->err;
    move_rec m;
    move_from_op(&m, op);
    do_move(w, op->st, &m);
    for (size_t i = 0; i < nlater && !w->err; i++)
        redo_move(w, later[i]);
    free(later);
    return w->err;
}

static int cmp_move_ops(const void *a, const void *b)
{
    const mfs_op *x = *(const mfs_op *const *)a, *y = *(const mfs_op *const *)b;
    return mfs_stamp_cmp(x->st, y->st);
}

/* Applies many moves with one undo/redo pass: the batch is sorted, every
 * logged move later than the batch's oldest is undone once, then the two
 * sorted sequences are merged. */
int tree_apply_moves(wtx *w, const mfs_op **ops, size_t n)
{
    if (n == 0 || w->err)
        return w->err;
    if (n == 1)
        return tree_apply_move(w, ops[0]);
    qsort(ops, n, sizeof(*ops), cmp_move_ops);
    mfs_stamp *later;
    size_t nlater;
    if (undo_after(w, ops[0]->st, &later, &nlater))
        return w->err;
    size_t i = 0, j = 0;
    while ((i < n || j < nlater) && !w->err) {
        if (i < n && (j == nlater || mfs_stamp_cmp(ops[i]->st, later[j]) < 0)) {
            if (i > 0 && stamp_eq(ops[i]->st, ops[i - 1]->st)) {
                i++;
                continue;
            }
            uint8_t k[MOVES_KEY_LEN];
            MDB_val v;
            stamp_put(k, ops[i]->st);
            if (tget(w->s, w->txn, DB_MOVES, k, MOVES_KEY_LEN, &v) != 0) {
                move_rec m;
                move_from_op(&m, ops[i]);
                do_move(w, ops[i]->st, &m);
            }
            i++;
        } else if (i < n && stamp_eq(ops[i]->st, later[j])) {
            i++; /* already logged: a duplicate */
        } else {
            redo_move(w, later[j]);
            j++;
        }
    }
    free(later);
    return w->err;
}
