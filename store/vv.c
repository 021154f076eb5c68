/*
 * vv.c - version vectors: the mfs_vv helpers of store.h, and the vector
 * of what the op log holds (DB_VV), as of a txn, of the last commit, or
 * of the last commit known durable (kept by txn.c's commit thread).
 *
 * Part of the store's bottom layer with txn.c (docs/ARCHITECTURE.md,
 * "Layers"): reads tables, never calls the ops, the tree, the content or
 * the view.
 */
#include "kv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void mfs_vv_free(mfs_vv *vv)
{
    if (!vv)
        return;
    free(vv->e);
    vv->e = NULL;
    vv->n = 0;
}

uint64_t mfs_vv_get(const mfs_vv *vv, uint64_t node)
{
    for (size_t i = 0; vv && i < vv->n; i++)
        if (vv->e[i].node == node)
            return vv->e[i].seq;
    return 0;
}

uint64_t mfs_vv_missing(const mfs_vv *a, const mfs_vv *b)
{
    uint64_t n = 0;
    for (size_t i = 0; i < a->n; i++) {
        uint64_t have = mfs_vv_get(b, a->e[i].node);
        if (a->e[i].seq > have)
            n += a->e[i].seq - have;
    }
    return n;
}

int store_vv_read(mfs_store *s, MDB_txn *txn, mfs_vv *out)
{
    out->n = 0;
    out->e = NULL;
    MDB_cursor *c;
    int rc = mdb_to_errno(mdb_cursor_open(txn, s->db[DB_VV], &c));
    if (!rc) {
        MDB_stat st;
        mdb_stat(txn, s->db[DB_VV], &st);
        out->e = calloc(st.ms_entries ? st.ms_entries : 1, sizeof(*out->e));
        if (!out->e)
            rc = -ENOMEM;
        MDB_val key, val;
        int r = rc ? MDB_NOTFOUND : mdb_cursor_get(c, &key, &val, MDB_FIRST);
        while (r == 0 && out->n < st.ms_entries) {
            out->e[out->n].node = mfs_be64_get(key.mv_data);
            out->e[out->n].seq = mfs_be64_get(val.mv_data);
            out->n++;
            r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
        }
        mdb_cursor_close(c);
    }
    return rc;
}

/* The vector of the calling thread's view (store_read_begin), or of the
 * last commit only. */
static int vv_at(mfs_store *s, bool committed, mfs_vv *out)
{
    MDB_txn *txn;
    int rc = committed ? store_read_begin_committed(s, &txn)
                       : store_read_begin(s, &txn);
    if (rc)
        return rc;
    rc = store_vv_read(s, txn, out);
    store_read_end(s, txn);
    return rc;
}

int store_vv_copy(mfs_vv *out, const mfs_vv *in)
{
    out->n = 0;
    out->e = NULL;
    if (!in->n)
        return 0;
    out->e = malloc(in->n * sizeof(*out->e));
    if (!out->e)
        return -ENOMEM;
    memcpy(out->e, in->e, in->n * sizeof(*out->e));
    out->n = in->n;
    return 0;
}

int mfs_store_vv(mfs_store *s, mfs_vv *out)
{
    return vv_at(s, false, out);
}

int mfs_store_vv_durable(mfs_store *s, mfs_vv *out)
{
    /* without group commit nothing is promised before a sync: the last
     * commit stands for it (tools, tests, the simulator) */
    if (!s->gc_on)
        return vv_at(s, true, out);
    pthread_mutex_lock(&s->vvlock);
    int rc = store_vv_copy(out, &s->vv_durable);
    pthread_mutex_unlock(&s->vvlock);
    return rc;
}
