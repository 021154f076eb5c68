/*
 * replica.c - the store API for sync/: version vectors, the ops a peer
 * lacks, and applying a batch of remote ops atomically and idempotently.
 *
 * A batch is validated whole before anything is written; a malformed one
 * changes nothing. Ops stamped too far in the future are left out (not
 * adopted) and will be offered again by the peer.
 */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

ssize_t mfs_store_ops_since(mfs_store *s, const mfs_vv *have, uint8_t *buf,
                            size_t cap)
{
    MDB_txn *txn;
    MDB_cursor *c;
    int rc = store_ops_cursor(s, &txn, &c);
    if (rc)
        return rc;
    if ((rc = oplog_check_have(s, txn, have)) != 0) {
        mdb_cursor_close(c);
        store_read_end(s, txn);
        return rc;
    }
    size_t len = 0, action_start = 0;
    bool in_action = false, full = false;
    uint8_t k[OPS_KEY_LEN];
    MDB_val key, val;
    int r = mdb_cursor_get(c, &key, &val, MDB_FIRST);
    while (r == 0 && !full) {
        uint64_t origin = mfs_be64_get(key.mv_data);
        uint64_t from = mfs_vv_get(have, origin) + 1;
        ops_key_put(k, origin, from);
        key.mv_size = OPS_KEY_LEN;
        key.mv_data = k;
        r = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
        while (r == 0 && mfs_be64_get(key.mv_data) == origin) {
            if (len + 4 + val.mv_size > cap) {
                full = true;
                if (in_action && action_start > 0)
                    len = action_start; /* never split an action */
                break;
            }
            if (!in_action)
                action_start = len;
            mfs_be32_put(buf + len, (uint32_t)val.mv_size);
            memcpy(buf + len + 4, val.mv_data, val.mv_size);
            len += 4 + val.mv_size;
            op_head h;
            op_head_decode(val.mv_data, val.mv_size, &h);
            in_action = (h.flags & OPF_MORE) != 0;
            r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
        }
        in_action = false;
    }
    mdb_cursor_close(c);
    store_read_end(s, txn);
    if (full && len == 0)
        return -ENOBUFS;
    return (ssize_t)len;
}

typedef struct batch {
    mfs_op *ops;
    const uint8_t **raw;
    size_t *rawlen;
    size_t n;
    mfs_apply_result res;
    bool replay; /* the intent log's records (store_apply_replay) */
} batch;

/* Notes in res the chunks that op, a small version just applied, made
 * this store want (DB_WANT: hash first). */
static void note_small(wtx *w, const mfs_op *op, mfs_apply_result *res)
{
    if (op->type != OP_VERSION || op->nchunks > MFS_SMALL_VERSION)
        return;
    MDB_cursor *c;
    if (mdb_cursor_open(w->txn, w->s->db[DB_WANT], &c))
        return;
    for (uint32_t i = 0; i < op->nchunks && res->nsmall < MFS_APPLY_SMALL;
         i++) {
        const uint8_t *h = op->hashes + (size_t)i * MFS_HASH_LEN;
        MDB_val key = {MFS_HASH_LEN, (void *)h}, val;
        if (mdb_cursor_get(c, &key, &val, MDB_SET_RANGE) ||
            key.mv_size < MFS_HASH_LEN || memcmp(key.mv_data, h, MFS_HASH_LEN))
            continue; /* held, or not wanted (superseded already) */
        size_t j = 0;
        while (j < res->nsmall && memcmp(res->small[j], h, MFS_HASH_LEN))
            j++;
        if (j < res->nsmall)
            continue;
        memcpy(res->small[res->nsmall], h, MFS_HASH_LEN);
        res->small_origin[res->nsmall++] = op->origin;
    }
    mdb_cursor_close(c);
}

/* Ids this node mints are (node, ++ctr): one of ours that an op names
 * keeps ctr at or past it. */
static void ctr_cover(mfs_store *s, mfs_id id)
{
    if (id.node == s->node && id.seq > s->ctr)
        s->ctr = id.seq;
}

static int tx_apply(wtx *w, void *arg)
{
    batch *b = arg;
    mfs_store *s = w->s;
    w->remote = true;
    uint64_t now = store_now_ms(s);
    const mfs_op **moves = calloc(b->n ? b->n : 1, sizeof(*moves));
    if (!moves)
        return -ENOMEM;
    size_t nmoves = 0;
    memset(&b->res, 0, sizeof(b->res));
    for (size_t i = 0; i < b->n && !w->err; i++) {
        mfs_op *op = &b->ops[i];
        if ((op->st.hlc >> 16) > now + s->cfg.max_future_ms) {
            b->res.deferred++;
            continue;
        }
        int rc = op_apply_remote(w, op, b->raw[i], b->rawlen[i], true);
        if (rc == 1) {
            b->res.duplicates++;
            continue;
        }
        if (rc)
            break;
        b->res.applied++;
        note_small(w, op, &b->res);
        if (op->origin == s->node && op->seq > s->seq)
            s->seq = op->seq; /* our own ops from a restored store */
        /* A version of ours that the log brings back was published from
         * the file's unpublished writes after LMDB's last commit, and
         * those writes are all the dirty state that commit holds: gone
         * into it (a kill -9 kept that state, and the file showed it,
         * shorter than what fsync had acknowledged). */
        if (b->replay && op->origin == s->node && op->type == OP_VERSION &&
            content_drop_dirty(w, op->obj))
            break;
        /* and the ids they minted (the intent log's replay: a new file
         * took the id of one the log brought back, and moved it away) */
        ctr_cover(s, op->obj);
        ctr_cover(s, op->inode);
        ctr_cover(s, op->parent);
        ctr_cover(s, op->from);
        if (op->type == OP_MOVE)
            moves[nmoves++] = op;
    }
    tree_apply_moves(w, moves, nmoves);
    free(moves);
    return w->err;
}

static int apply_batch(mfs_store *s, const uint8_t *data, size_t len,
                       mfs_apply_result *res, bool replay)
{
    batch b = {.replay = replay};
    size_t cap = 0;
    mfs_rbuf r;
    mfs_rbuf_init(&r, data, len);
    int rc = 0;
    while (mfs_rbuf_left(&r) > 0) {
        size_t n;
        const uint8_t *p = mfs_get_blob32(&r, &n, MFS_MAX_OP_BYTES);
        if (!p || n == 0) {
            rc = -EBADMSG;
            break;
        }
        if (b.n == cap) {
            cap = cap ? cap * 2 : 64;
            mfs_op *no = realloc(b.ops, cap * sizeof(*no));
            if (no)
                b.ops = no;
            const uint8_t **nr = realloc(b.raw, cap * sizeof(*nr));
            if (nr)
                b.raw = nr;
            size_t *nl = realloc(b.rawlen, cap * sizeof(*nl));
            if (nl)
                b.rawlen = nl;
            if (!no || !nr || !nl) {
                rc = -ENOMEM;
                break;
            }
        }
        rc = op_decode(p, n, &b.ops[b.n]);
        if (rc)
            break;
        b.raw[b.n] = p;
        b.rawlen[b.n] = n;
        b.n++;
    }
    if (!rc && r.err)
        rc = -EBADMSG;
    if (!rc && b.n)
        rc = store_write(s, tx_apply, &b);
    if (res)
        *res = b.res;
    for (size_t i = 0; i < b.n; i++)
        op_clear(&b.ops[i]);
    free(b.ops);
    free(b.raw);
    free(b.rawlen);
    return rc;
}

int mfs_store_apply(mfs_store *s, const uint8_t *data, size_t len,
                    mfs_apply_result *res)
{
    return apply_batch(s, data, len, res, false);
}

int store_apply_replay(mfs_store *s, const uint8_t *ops, size_t len)
{
    return apply_batch(s, ops, len, NULL, true);
}

/* Sets vv[node] to at least seq, keeping vv sorted by node. */
static int vv_raise(mfs_vv *vv, uint64_t node, uint64_t seq)
{
    size_t lo = 0, hi = vv->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (vv->e[mid].node < node)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < vv->n && vv->e[lo].node == node) {
        if (vv->e[lo].seq < seq)
            vv->e[lo].seq = seq;
        return 0;
    }
    mfs_vv_entry *ne = realloc(vv->e, (vv->n + 1) * sizeof(*ne));
    if (!ne)
        return -ENOMEM;
    vv->e = ne;
    memmove(ne + lo + 1, ne + lo, (vv->n - lo) * sizeof(*ne));
    ne[lo].node = node;
    ne[lo].seq = seq;
    vv->n++;
    return 0;
}

/* The next op of a batch at r and its header: 0, or -EBADMSG when the
 * framing is bad or the op too short to hold origin, seq and hlc. */
static int batch_next(mfs_rbuf *r, op_head *h)
{
    size_t oplen;
    const uint8_t *p = mfs_get_blob32(r, &oplen, MFS_MAX_OP_BYTES);
    if (!p || op_head_decode(p, oplen, h) < OP_HDR_HLC)
        return -EBADMSG;
    return 0;
}

ssize_t mfs_batch_scan(const uint8_t *ops, size_t len, mfs_vv *vv)
{
    mfs_rbuf r;
    mfs_rbuf_init(&r, ops, len);
    ssize_t n = 0;
    while (mfs_rbuf_left(&r) > 0) {
        op_head h;
        if (batch_next(&r, &h))
            return -EBADMSG;
        uint64_t origin = h.origin, seq = h.seq;
        if (!origin || !seq)
            return -EBADMSG;
        int rc = vv_raise(vv, origin, seq);
        if (rc)
            return rc;
        n++;
    }
    return r.err ? -EBADMSG : n;
}

ssize_t mfs_batch_skip(const uint8_t *ops, size_t len, uint64_t origin,
                       uint64_t seq)
{
    mfs_rbuf r;
    mfs_rbuf_init(&r, ops, len);
    while (mfs_rbuf_left(&r) > 0) {
        size_t at = len - mfs_rbuf_left(&r);
        op_head h;
        if (batch_next(&r, &h))
            return -EBADMSG;
        if (h.origin != origin || h.seq > seq)
            return (ssize_t)at;
    }
    return r.err ? -EBADMSG : (ssize_t)len;
}

size_t mfs_batch_small_chunks(const uint8_t *ops, size_t len, size_t small,
                              uint8_t *out, size_t max)
{
    static const uint8_t hole[MFS_HASH_LEN];
    mfs_rbuf r;
    mfs_rbuf_init(&r, ops, len);
    size_t n = 0;
    while (n < max && mfs_rbuf_left(&r) > 0) {
        size_t oplen;
        const uint8_t *p = mfs_get_blob32(&r, &oplen, MFS_MAX_OP_BYTES);
        if (!p)
            break;
        op_head h;
        if (op_head_decode(p, oplen, &h) < OP_HDR_LEN || h.type != OP_VERSION)
            continue;
        mfs_op op;
        if (op_decode(p, oplen, &op) != 0)
            continue;
        if (op.nchunks == 1 && op.size <= small &&
            memcmp(op.hashes, hole, MFS_HASH_LEN) != 0)
            memcpy(out + n++ * MFS_HASH_LEN, op.hashes, MFS_HASH_LEN);
        op_clear(&op);
    }
    return n;
}

ssize_t mfs_batch_prefix(const uint8_t *ops, size_t len, size_t max)
{
    /* the cut mfs_store_ops_since makes when its buffer is full */
    mfs_rbuf r;
    mfs_rbuf_init(&r, ops, len);
    size_t at = 0, action_start = 0;
    bool in_action = false;
    uint64_t origin = 0;
    while (mfs_rbuf_left(&r) > 0) {
        op_head h;
        if (batch_next(&r, &h))
            return -EBADMSG;
        if (h.origin != origin)
            in_action = false; /* the sender starts each origin afresh */
        origin = h.origin;
        size_t end = len - mfs_rbuf_left(&r);
        if (end > max) {
            if (at == 0)
                return (ssize_t)end; /* one op larger than max: alone */
            return (ssize_t)(in_action && action_start > 0 ? action_start : at);
        }
        if (!in_action)
            action_start = at;
        at = end;
        in_action = (h.flags & OPF_MORE) != 0;
    }
    return r.err ? -EBADMSG : (ssize_t)len;
}

/* ---- members: removals --------------------------------------------------
 * A removal is a register on the member registry object, set by an XATTR
 * op like any other change: it replicates, converges, and is never
 * cleared (no op clears it). */

#define REMOVED_PREFIX "removed."

static int tx_member_remove(wtx *w, void *arg)
{
    uint64_t node = *(const uint64_t *)arg;
    char name[40];
    snprintf(name, sizeof name, REMOVED_PREFIX "%016" PRIx64, node);
    uint8_t key[XATTR_KEY_NAME + sizeof name];
    id_put(key, MFS_ID_MEMBERS);
    size_t n = strlen(name);
    memcpy(key + XATTR_KEY_NAME, name, n);
    MDB_val v;
    if (tget(w->s, w->txn, DB_XATTRS, key, XATTR_KEY_NAME + n, &v) == 0)
        return -EALREADY;
    mfs_op op = {.type = OP_XATTR,
                 .obj = MFS_ID_MEMBERS,
                 .name = name,
                 .namelen = n,
                 .present = 1};
    return op_local(w, &op);
}

/* ---- members: joining ---------------------------------------------------
 * A node that reached the mesh (it holds lost+found: the ops that made the
 * mesh) and never originated an op says so with one: a register
 * "member.<node>" on the registry. Every origin is a member for good (sync/
 * counts each origin in its vector), so from then on every node waits for
 * it, even after a restart that forgot the peers it had met: a node that
 * joined, went away and edits offline is not collected past. */

#define MEMBER_PREFIX "member."

static int tx_member_join(wtx *w, void *arg)
{
    int *done = arg;
    mfs_store *s = w->s;
    uint8_t k[VV_KEY_LEN];
    mfs_be64_put(k, s->node);
    MDB_val v;
    if (s->seq || (tget(s, w->txn, DB_VV, k, VV_KEY_LEN, &v) == 0 &&
                   v.mv_size == VV_VAL_LEN && mfs_be64_get(v.mv_data))) {
        *done = 0; /* an origin already */
        return 0;
    }
    entry_rec er;
    if (entry_get(s, w->txn, MFS_ID_LOSTFOUND, &er) != 0 || !er.exists)
        return -EAGAIN; /* not reached yet */
    char name[40];
    snprintf(name, sizeof name, MEMBER_PREFIX "%016" PRIx64, s->node);
    mfs_op op = {.type = OP_XATTR,
                 .obj = MFS_ID_MEMBERS,
                 .name = name,
                 .namelen = strlen(name),
                 .present = 1};
    *done = 1;
    return op_local(w, &op);
}

int mfs_store_member_join(mfs_store *s)
{
    int done = 0;
    int rc = store_write(s, tx_member_join, &done);
    return rc ? rc : done;
}

int mfs_store_member_remove(mfs_store *s, uint64_t node)
{
    if (!node || node == s->node)
        return -EINVAL;
    return store_write(s, tx_member_remove, &node);
}

/* Calls cb for each present register "<prefix><16 hex digits>" on the
 * registry, with the node and the value; cb returning nonzero stops. */
static int registry_scan(mfs_store *s, const char *prefix,
                         int (*cb)(void *arg, uint64_t node, const uint8_t *val,
                                   size_t len),
                         void *arg)
{
    MDB_txn *txn;
    int rc = store_read_begin(s, &txn);
    if (rc)
        return rc;
    MDB_cursor *c;
    rc = mdb_to_errno(mdb_cursor_open(txn, s->db[DB_XATTRS], &c));
    if (rc) {
        store_read_end(s, txn);
        return rc;
    }
    uint8_t k[ID_KEY_LEN];
    id_put(k, MFS_ID_MEMBERS);
    MDB_val key = {ID_KEY_LEN, k}, val;
    size_t pl = strlen(prefix);
    int r = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (r == 0 && key.mv_size >= XATTR_KEY_NAME &&
           !memcmp(key.mv_data, k, ID_LEN)) {
        const char *name = (const char *)key.mv_data + XATTR_KEY_NAME;
        size_t nl = key.mv_size - XATTR_KEY_NAME;
        const uint8_t *v = val.mv_data;
        char hex[17];
        if (nl == pl + 16 && !memcmp(name, prefix, pl) &&
            val.mv_size >= XATTR_VAL_DATA && v[XATTR_VAL_PRESENT]) {
            memcpy(hex, name + pl, 16);
            hex[16] = 0;
            char *end;
            uint64_t node = strtoull(hex, &end, 16);
            if (!*end && node &&
                cb(arg, node, v + XATTR_VAL_DATA, val.mv_size - XATTR_VAL_DATA))
                break;
        }
        r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    store_read_end(s, txn);
    return 0;
}

typedef struct removed_list {
    uint64_t *out;
    size_t cap, n;
} removed_list;

static int removed_one(void *arg, uint64_t node, const uint8_t *v, size_t len)
{
    (void)v, (void)len;
    removed_list *l = arg;
    if (l->n < l->cap)
        l->out[l->n] = node;
    l->n++;
    return 0;
}

ssize_t mfs_store_members_removed(mfs_store *s, uint64_t *out, size_t cap)
{
    removed_list l = {out, cap, 0};
    int rc = registry_scan(s, REMOVED_PREFIX, removed_one, &l);
    return rc ? rc : (ssize_t)l.n;
}

/* ---- members: identities ------------------------------------------------
 * "key.<node>" on the registry holds a member's identity record: its
 * public key and who admitted it (sync/ident.h writes and checks the
 * bytes; the store keeps them as a register that replicates like any
 * change, the last write winning). */

#define KEY_PREFIX "key."

/* A register "<prefix><node>" on the registry set to rec, unless it holds
 * those bytes already (-EALREADY). */
typedef struct key_put {
    const char *prefix;
    uint64_t node;
    const uint8_t *rec;
    size_t len;
} key_put;

static int tx_register_put(wtx *w, void *arg)
{
    const key_put *k = arg;
    char name[40];
    snprintf(name, sizeof name, "%s%016" PRIx64, k->prefix, k->node);
    size_t n = strlen(name);
    uint8_t key[XATTR_KEY_NAME + sizeof name];
    id_put(key, MFS_ID_MEMBERS);
    memcpy(key + XATTR_KEY_NAME, name, n);
    MDB_val v;
    if (tget(w->s, w->txn, DB_XATTRS, key, XATTR_KEY_NAME + n, &v) == 0 &&
        v.mv_size == XATTR_VAL_DATA + k->len &&
        ((const uint8_t *)v.mv_data)[XATTR_VAL_PRESENT] &&
        !memcmp((const uint8_t *)v.mv_data + XATTR_VAL_DATA, k->rec, k->len))
        return -EALREADY;
    mfs_op op = {.type = OP_XATTR,
                 .obj = MFS_ID_MEMBERS,
                 .name = name,
                 .namelen = n,
                 .value = k->rec,
                 .vlen = k->len,
                 .present = 1};
    return op_local(w, &op);
}

int mfs_store_member_key_put(mfs_store *s, uint64_t node, const uint8_t *rec,
                             size_t len)
{
    if (!node || !len || len > 1024)
        return -EINVAL;
    key_put k = {KEY_PREFIX, node, rec, len};
    return store_write(s, tx_register_put, &k);
}

int mfs_store_member_keys(mfs_store *s,
                          int (*cb)(void *arg, uint64_t node,
                                    const uint8_t *rec, size_t len),
                          void *arg)
{
    return registry_scan(s, KEY_PREFIX, cb, arg);
}

/* ---- members: open invitations ------------------------------------------
 * "invited.<id>" on the registry, <id> the first 8 bytes of the
 * invitation's id in hex (enough to name it: `meshfs invite --revoke`
 * takes a prefix), lists an invitation on every member while it is open.
 * Only the node that made it writes it (its daemon, from its
 * STORE/invites), so the last write is always that node's view. Clearing
 * is the register written absent, as removing an xattr is. The value is
 * fixed-size, big-endian; a reader takes a longer one (a later build may
 * append fields) by its prefix. */

#define INVITED_PREFIX "invited."
#define INVITED_BY 0
#define INVITED_CREATED (INVITED_BY + U64_LEN)
#define INVITED_EXPIRES (INVITED_CREATED + U64_LEN)
#define INVITED_USES (INVITED_EXPIRES + U64_LEN)
#define INVITED_LEN (INVITED_USES + U32_LEN)
_Static_assert(INVITED_LEN == 28, "invited register: by, created, expires, "
                                  "uses");

static void invited_encode(const mfs_invited *iv, uint8_t v[INVITED_LEN])
{
    mfs_be64_put(v + INVITED_BY, iv->by);
    mfs_be64_put(v + INVITED_CREATED, (uint64_t)iv->created);
    mfs_be64_put(v + INVITED_EXPIRES, (uint64_t)iv->expires);
    mfs_be32_put(v + INVITED_USES, iv->uses);
}

/* The register's name and its DB_XATTRS key; the name's length. */
static size_t invited_key(uint64_t id, char name[40],
                          uint8_t key[XATTR_KEY_NAME + 40])
{
    snprintf(name, 40, INVITED_PREFIX "%016" PRIx64, id);
    size_t n = strlen(name);
    id_put(key, MFS_ID_MEMBERS);
    memcpy(key + XATTR_KEY_NAME, name, n);
    return n;
}

/* Its value if set (present), else NULL. */
static const uint8_t *invited_get(wtx *w, const uint8_t *key, size_t kl,
                                  size_t *len)
{
    MDB_val v;
    if (tget(w->s, w->txn, DB_XATTRS, key, kl, &v) ||
        v.mv_size < XATTR_VAL_DATA + INVITED_LEN ||
        !((const uint8_t *)v.mv_data)[XATTR_VAL_PRESENT])
        return NULL;
    *len = v.mv_size - XATTR_VAL_DATA;
    return (const uint8_t *)v.mv_data + XATTR_VAL_DATA;
}

static int tx_invited_clear(wtx *w, void *arg)
{
    uint64_t id = *(const uint64_t *)arg;
    char name[40];
    uint8_t key[XATTR_KEY_NAME + 40];
    size_t n = invited_key(id, name, key), len;
    const uint8_t *cur = invited_get(w, key, XATTR_KEY_NAME + n, &len);
    if (!cur)
        return -EALREADY;
    if (mfs_be64_get(cur + INVITED_BY) != w->s->node)
        return -EPERM;
    mfs_op op = {.type = OP_XATTR,
                 .obj = MFS_ID_MEMBERS,
                 .name = name,
                 .namelen = n,
                 .present = 0};
    return op_local(w, &op);
}

int mfs_store_invited_put(mfs_store *s, const mfs_invited *iv)
{
    if (!iv->id || iv->by != s->node || !iv->uses)
        return -EINVAL;
    uint8_t val[INVITED_LEN];
    invited_encode(iv, val);
    key_put k = {INVITED_PREFIX, iv->id, val, sizeof val};
    return store_write(s, tx_register_put, &k);
}

int mfs_store_invited_clear(mfs_store *s, uint64_t id)
{
    if (!id)
        return -EINVAL;
    return store_write(s, tx_invited_clear, &id);
}

typedef struct invited_list {
    mfs_invited *out;
    size_t cap, n;
} invited_list;

static int invited_one(void *arg, uint64_t id, const uint8_t *v, size_t len)
{
    invited_list *l = arg;
    if (len < INVITED_LEN)
        return 0; /* not one this build can read */
    if (l->n < l->cap)
        l->out[l->n] =
            (mfs_invited){.id = id,
                          .by = mfs_be64_get(v + INVITED_BY),
                          .created = (int64_t)mfs_be64_get(v + INVITED_CREATED),
                          .expires = (int64_t)mfs_be64_get(v + INVITED_EXPIRES),
                          .uses = mfs_be32_get(v + INVITED_USES)};
    l->n++;
    return 0;
}

ssize_t mfs_store_invited_list(mfs_store *s, mfs_invited *out, size_t cap)
{
    invited_list l = {out, cap, 0};
    int rc = registry_scan(s, INVITED_PREFIX, invited_one, &l);
    return rc ? rc : (ssize_t)l.n;
}

/* ---- the trash's floor --------------------------------------------------
 * "trashfloor.<node>" on the registry: a time (unix ms, u64) up to which
 * that node asked every member to empty its trash, to keep the trash
 * within its share of that node's disk (collect.c). A node only raises its
 * own; the floor is the largest of them, so every member keeps the same
 * trash, bounded by the smallest share in the mesh. */

#define TRASH_FLOOR_PREFIX "trashfloor."
#define TRASH_FLOOR_LEN U64_LEN

static int floor_max(void *arg, uint64_t node, const uint8_t *v, size_t len)
{
    (void)node;
    uint64_t *ms = arg;
    if (len == TRASH_FLOOR_LEN && mfs_be64_get(v) > *ms)
        *ms = mfs_be64_get(v);
    return 0;
}

int store_trash_floor(mfs_store *s, uint64_t *ms)
{
    *ms = 0;
    return registry_scan(s, TRASH_FLOOR_PREFIX, floor_max, ms);
}

int store_trash_floor_raise(mfs_store *s, uint64_t ms)
{
    uint8_t v[TRASH_FLOOR_LEN];
    mfs_be64_put(v, ms);
    key_put k = {TRASH_FLOOR_PREFIX, s->node, v, sizeof v};
    int rc = store_write(s, tx_register_put, &k);
    return rc == -EALREADY ? 0 : rc;
}
