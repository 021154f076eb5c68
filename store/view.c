/*
 * view.c - what users see, derived from the raw replicated state.
 *
 * The raw tree (tree.c) and the versions (content.c) converge; this module
 * turns them into directory listings, deterministically on every replica:
 *  - an entry whose parent directory was deleted (concurrently, so it was not
 *    deleted itself) shows in /lost+found;
 *  - a deleted non-directory whose inode has a head version the deleting node
 *    had not seen comes back, in the directory it was deleted from, or in
 *    /lost+found when that is gone too;
 *  - entries with one name in one directory: the one moved there last keeps
 *    the name, the others show as <stem>.conflict-<node>-<time><.ext>;
 *  - concurrent versions of a file: the newest is the file, every other head
 *    shows beside it as a conflict copy.
 * It is maintained incrementally at the end of each write transaction from
 * the sets of entries and inodes the transaction touched. It must depend on
 * nothing but the raw state, never on the order ops arrived in.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct vent_rec {
    bool exists, visible, live;
    mfs_id dir;
    mfs_id inode;                 /* the inode it names */
    uint32_t type;                /* that inode's type */
    mfs_stamp st;                 /* its last move: orders same-name entries */
    char name[MFS_NAME_MAX + 1];  /* raw name */
    char dname[MFS_NAME_MAX + 1]; /* display name ("" until named) */
} vent_rec;

static int vent_get(mfs_store *s, MDB_txn *txn, mfs_id e, vent_rec *out)
{
    memset(out, 0, sizeof(*out));
    uint8_t k[ID_KEY_LEN];
    id_put(k, e);
    MDB_val v;
    int rc = tget(s, txn, DB_VENT, k, ID_KEY_LEN, &v);
    if (rc)
        return rc;
    mfs_rbuf r;
    mfs_rbuf_init(&r, v.mv_data, v.mv_size);
    out->visible = mfs_get_u8(&r);
    out->live = mfs_get_u8(&r);
    out->dir = mfs_rget_id(&r);
    out->inode = mfs_rget_id(&r);
    out->type = mfs_get_u32(&r);
    out->st = mfs_rget_stamp(&r);
    SCHEMA_RAT(&r, VENT_NAME);
    size_t n;
    const uint8_t *p = mfs_get_str16(&r, &n, MFS_NAME_MAX);
    if (p) {
        memcpy(out->name, p, n);
        out->name[n] = 0;
    }
    p = mfs_get_str16(&r, &n, MFS_NAME_MAX);
    if (p) {
        memcpy(out->dname, p, n);
        out->dname[n] = 0;
    }
    if (r.err)
        return -EIO;
    out->exists = true;
    return 0;
}

static int vent_put(wtx *w, mfs_id e, const vent_rec *vr)
{
    uint8_t buf[256 + 2 * MFS_NAME_MAX], k[ID_KEY_LEN];
    mfs_wbuf wb;
    mfs_wbuf_init(&wb, buf, sizeof(buf));
    mfs_put_u8(&wb, vr->visible);
    mfs_put_u8(&wb, vr->live);
    mfs_wput_id(&wb, vr->dir);
    mfs_wput_id(&wb, vr->inode);
    mfs_put_u32(&wb, vr->type);
    mfs_wput_stamp(&wb, vr->st);
    SCHEMA_WAT(&wb, VENT_NAME);
    mfs_put_str16(&wb, vr->name, strlen(vr->name));
    mfs_put_str16(&wb, vr->dname, strlen(vr->dname));
    if (wb.err)
        return wtx_fail(w, -EIO);
    id_put(k, e);
    return tput(w, DB_VENT, k, ID_KEY_LEN, buf, wb.len);
}

static size_t dirent_key(uint8_t *k, mfs_id dir, const char *name)
{
    size_t n = strlen(name);
    id_put(k, dir);
    memcpy(k + DIRENT_KEY_NAME, name, n);
    return DIRENT_KEY_NAME + n;
}

int view_dirent_decode(const MDB_val *v, dirent_rec *out)
{
    mfs_rbuf r;
    mfs_rbuf_init(&r, v->mv_data, v->mv_size);
    out->kind = mfs_get_u8(&r);
    out->ino = mfs_get_u64(&r);
    out->type = mfs_get_u32(&r);
    out->entry = mfs_rget_id(&r);
    out->inode = mfs_rget_id(&r);
    out->ver = mfs_rget_stamp(&r);
    SCHEMA_RAT(&r, DIRENT_LEN);
    return r.err ? -EIO : 0;
}

static int dirent_put(wtx *w, mfs_id dir, const char *name, const dirent_rec *d)
{
    uint8_t k[DIRENT_KEY_NAME + MFS_NAME_MAX], buf[128];
    size_t kl = dirent_key(k, dir, name);
    mfs_wbuf wb;
    mfs_wbuf_init(&wb, buf, sizeof(buf));
    mfs_put_u8(&wb, d->kind);
    mfs_put_u64(&wb, d->ino);
    mfs_put_u32(&wb, d->type);
    mfs_wput_id(&wb, d->entry);
    mfs_wput_id(&wb, d->inode);
    mfs_wput_stamp(&wb, d->ver);
    SCHEMA_WAT(&wb, DIRENT_LEN);
    return tput(w, DB_DIRENTS, k, kl, buf, wb.len);
}

int view_lookup(mfs_store *s, MDB_txn *txn, mfs_id dir, const char *name,
                dirent_rec *out)
{
    uint8_t k[DIRENT_KEY_NAME + MFS_NAME_MAX];
    if (strlen(name) > MFS_NAME_MAX)
        return -ENAMETOOLONG;
    size_t kl = dirent_key(k, dir, name);
    MDB_val v;
    int rc = tget(s, txn, DB_DIRENTS, k, kl, &v);
    if (rc)
        return rc;
    return view_dirent_decode(&v, out);
}

/* Deletes dirent (dir, name) if it is the one described by (kind, entry,
 * ver); a name another object took over is left alone. */
static void dirent_del_if(wtx *w, mfs_id dir, const char *name, uint8_t kind,
                          mfs_id entry, mfs_stamp ver)
{
    if (!name[0])
        return;
    dirent_rec d;
    if (view_lookup(w->s, w->txn, dir, name, &d))
        return;
    if (d.kind != kind || !id_eq(d.entry, entry) ||
        (kind == OBJ_CCOPY && !stamp_eq(d.ver, ver)))
        return;
    uint8_t k[DIRENT_KEY_NAME + MFS_NAME_MAX];
    size_t kl = dirent_key(k, dir, name);
    tdel(w, DB_DIRENTS, k, kl);
}

/* A name of dir appeared, vanished or moved: reported for local calls too
 * (store.h, mfs_change_cb). */
static void change_dirent(wtx *w, mfs_id dir, const char *name)
{
    if (!w->s->change_cb)
        return; /* (no mount: no lookup) */
    objkey ok = obj_inode(dir);
    uint64_t ino;
    if (ino_of_obj(w->s, w->txn, &ok, &ino) == 0)
        wtx_change(w, MFS_CHANGE_ENTRY, ino, name);
}

/* A remote change moved inode's link count: the kernel's cached attributes
 * of its other names are stale. (A local link or unlink went through the
 * kernel, which counts it itself.) */
static void change_nlink(wtx *w, mfs_id inode)
{
    if (!w->remote)
        return;
    objkey ok = obj_inode(inode);
    uint64_t ino;
    if (ino_of_obj(w->s, w->txn, &ok, &ino) == 0)
        wtx_change(w, MFS_CHANGE_ATTR, ino, NULL);
}

/* Adds delta to a u32 counter keyed by id in table db (absent = 0);
 * returns the new count. */
static int64_t count_add(wtx *w, int db, mfs_id id, int delta)
{
    uint8_t k[ID_KEY_LEN], b[COUNT_VAL_LEN];
    id_put(k, id);
    MDB_val v;
    int64_t n = 0;
    if (tget(w->s, w->txn, db, k, ID_KEY_LEN, &v) == 0 &&
        v.mv_size == COUNT_VAL_LEN)
        n = mfs_be32_get(v.mv_data);
    n += delta;
    if (n <= 0) {
        tdel(w, db, k, ID_KEY_LEN);
        return 0;
    }
    mfs_be32_put(b, (uint32_t)n);
    tput(w, db, k, ID_KEY_LEN, b, COUNT_VAL_LEN);
    return n;
}

static void nsub_add(wtx *w, mfs_id dir, int delta)
{
    count_add(w, DB_NSUB, dir, delta);
}

/* ---- the census ----------------------------------------------------------
 * `meshfs stat` counts visible inodes by type, their bytes and the
 * generated (conflict) names shown. Counting them meant a scan of every
 * name at each call (0.14 s at 100,000 files); they are kept instead, as
 * the view changes: an inode counts while it has a visible name (DB_NLINK
 * goes 0 -> 1 and back), a counted file's size follows its shown version,
 * and the conflicts are DB_CDIRS summed. An inode record of type 0 (its
 * attributes arrived before it) counts as nothing until it has a type.
 * The unit and convergence tests hold it equal to the scan
 * (mfs_store_stats_scan). */

/* The conflict names shown in a DB_CDIRS value: a second u32 since the
 * census (the names generated can be more: a name cut at MFS_NAME_MAX may
 * lose what tells two apart, and the later one replaces the earlier). */
static uint32_t cdirs_shown(const MDB_val *v)
{
    if (v->mv_size == CDIRS_VAL_LEN)
        return mfs_be32_get((const uint8_t *)v->mv_data + CDIRS_VAL_SHOWN);
    return v->mv_size == U32_LEN ? mfs_be32_get(v->mv_data) : 0;
}

static bool view_visible(wtx *w, mfs_id inode)
{
    uint8_t k[ID_KEY_LEN];
    id_put(k, inode);
    MDB_val v;
    return tget(w->s, w->txn, DB_NLINK, k, ID_KEY_LEN, &v) == 0;
}

static void census_add(struct census *c, const inode_rec *in, int sign)
{
    switch (in->type) {
    case 0:
        return;
    case S_IFREG:
        c->files += sign;
        c->bytes += sign * (int64_t)in->size;
        return;
    case S_IFDIR:
        c->dirs += sign;
        return;
    case S_IFLNK:
        c->symlinks += sign;
        return;
    default:
        c->others += sign;
    }
}

void census_inode(wtx *w, mfs_id inode, int sign)
{
    inode_rec in;
    if (inode_get(w->s, w->txn, inode, &in) == 0)
        census_add(&w->s->census, &in, sign);
}

void census_typed(wtx *w, mfs_id inode)
{
    if (view_visible(w, inode))
        census_inode(w, inode, +1); /* counted as nothing so far */
}

void census_resize(wtx *w, mfs_id inode, uint32_t type, uint64_t from,
                   uint64_t to)
{
    if (type == S_IFREG && from != to && view_visible(w, inode))
        w->s->census.bytes += (int64_t)to - (int64_t)from;
}

/* Counts visible files (each inode once, through its visible names) and
 * their logical bytes into out. */
void store_count_files(mfs_store *s, MDB_txn *txn, mfs_store_stats *out)
{
    MDB_cursor *c;
    MDB_val key, val;
    if (mdb_cursor_open(txn, s->db[DB_LINKS], &c) == 0) {
        uint8_t last[ID_LEN] = {0}; /* the inode of the last DB_LINKS key */
        int r = mdb_cursor_get(c, &key, &val, MDB_FIRST);
        while (r == 0) {
            if (memcmp(last, (uint8_t *)key.mv_data + PAIR_KEY_A, ID_LEN)) {
                memcpy(last, (uint8_t *)key.mv_data + PAIR_KEY_A, ID_LEN);
                inode_rec in;
                if (inode_get(s, txn, id_get(last), &in) == 0 && in.type) {
                    if (in.type == S_IFREG) {
                        out->files++;
                        out->bytes += in.size;
                    } else if (in.type == S_IFDIR) {
                        out->dirs++;
                    } else if (in.type == S_IFLNK) {
                        out->symlinks++;
                    } else {
                        out->others++;
                    }
                }
            }
            r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
        }
        mdb_cursor_close(c);
    }
}

int census_recount(wtx *w)
{
    mfs_store *s = w->s;
    mfs_store_stats st = {0};
    store_count_files(s, w->txn, &st);
    struct census c = {.files = (int64_t)st.files,
                       .dirs = (int64_t)st.dirs,
                       .symlinks = (int64_t)st.symlinks,
                       .others = (int64_t)st.others,
                       .bytes = (int64_t)st.bytes};
    MDB_cursor *cur;
    MDB_val key, val;
    int rc = mdb_cursor_open(w->txn, s->db[DB_CDIRS], &cur);
    if (rc)
        return wtx_fail(w, rc);
    rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST);
    while (rc == 0) {
        c.conflicts += cdirs_shown(&val);
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND)
        return wtx_fail(w, rc);
    s->census = c;
    return census_put(w);
}

int census_put(wtx *w)
{
    const struct census *c = &w->s->census;
    const int64_t v[6] = {c->files,  c->dirs,  c->symlinks,
                          c->others, c->bytes, c->conflicts};
    uint8_t b[META_CENSUS_LEN];
    for (int i = 0; i < 6; i++) {
        if (v[i] < 0) /* a fault in the bookkeeping: count again */
            return wtx_fail(w, -EUCLEAN);
        mfs_be64_put(b + U64_LEN * i, (uint64_t)v[i]);
    }
    return tput(w, DB_META, "census", 6, b, META_CENSUS_LEN);
}

int census_get(mfs_store *s, MDB_txn *txn, struct census *out)
{
    if (s->gc_on && txn && txn == s->gc_txn) {
        *out = s->census; /* (the group's: put as it commits, wlock held) */
        return 0;
    }
    MDB_val v;
    int rc = tget(s, txn, DB_META, "census", 6, &v);
    if (rc)
        return rc;
    if (v.mv_size != META_CENSUS_LEN)
        return -EIO;
    int64_t *f[6] = {&out->files,  &out->dirs,  &out->symlinks,
                     &out->others, &out->bytes, &out->conflicts};
    for (int i = 0; i < 6; i++)
        *f[i] = (int64_t)mfs_be64_get((const uint8_t *)v.mv_data + U64_LEN * i);
    return 0;
}

void census_save(wtx *w)
{
    mfs_store *s = w->s;
    if (w->recount) {
        census_recount(w);
        w->recount = false;
    } else if (memcmp(&s->census, &s->census_put, sizeof(s->census)))
        census_put(w);
    s->census_put = s->census;
}

static int recount_tx(wtx *w, void *arg)
{
    (void)arg;
    w->recount = true;
    return 0;
}

int census_load(mfs_store *s)
{
    MDB_txn *txn;
    int rc = store_read_begin_committed(s, &txn);
    if (rc)
        return rc;
    rc = census_get(s, txn, &s->census);
    store_read_end(s, txn);
    if (rc == 0) {
        s->census_put = s->census;
        return 0;
    }
    /* none: a store of format 4 or older, upgraded by this open */
    memset(&s->census, 0, sizeof(s->census));
    s->census_put = s->census;
    return s->rdonly ? 0 : store_write(s, recount_tx, NULL);
}

uint32_t view_nlink(mfs_store *s, MDB_txn *txn, mfs_id inode, uint32_t type)
{
    uint8_t k[ID_KEY_LEN];
    id_put(k, inode);
    MDB_val v;
    uint32_t n = 0;
    if (tget(s, txn, type == S_IFDIR ? DB_NSUB : DB_NLINK, k, ID_KEY_LEN, &v) ==
            0 &&
        v.mv_size == COUNT_VAL_LEN)
        n = mfs_be32_get(v.mv_data);
    return type == S_IFDIR ? 2 + n : n;
}

int view_primary(mfs_store *s, MDB_txn *txn, mfs_id inode, mfs_id *entry,
                 mfs_id *dir, char *dname)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, s->db[DB_LINKS], &c);
    if (rc)
        return mdb_to_errno(rc);
    uint8_t k[ID_KEY_LEN];
    id_put(k, inode);
    MDB_val key = {ID_KEY_LEN, k}, val;
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    if (rc || memcmp(key.mv_data, k, ID_LEN)) {
        mdb_cursor_close(c);
        return -ENOENT;
    }
    mfs_id e = id_get((uint8_t *)key.mv_data + PAIR_KEY_B);
    mdb_cursor_close(c);
    vent_rec vr;
    if (vent_get(s, txn, e, &vr) || !vr.visible)
        return -ENOENT;
    if (entry)
        *entry = e;
    if (dir)
        *dir = vr.dir;
    if (dname)
        strcpy(dname, vr.dname);
    return 0;
}

int view_path(mfs_store *s, MDB_txn *txn, mfs_id dir, char *out, size_t cap)
{
    char tmp[4096];
    size_t pos = sizeof(tmp) - 1;
    tmp[pos] = 0;
    mfs_id x = dir;
    for (int depth = 0; !id_eq(x, MFS_ID_ROOT); depth++) {
        char name[MFS_NAME_MAX + 1];
        mfs_id p;
        if (depth > 1024 || view_primary(s, txn, x, NULL, &p, name))
            return -ENOENT;
        size_t n = strlen(name);
        if (n + 1 > pos)
            return -ENAMETOOLONG;
        pos -= n;
        memcpy(tmp + pos, name, n);
        tmp[--pos] = '/';
        x = p;
    }
    const char *res = pos == sizeof(tmp) - 1 ? "/" : tmp + pos;
    if (strlen(res) + 1 > cap)
        return -ENAMETOOLONG;
    strcpy(out, res);
    return 0;
}

bool view_dir_empty(mfs_store *s, MDB_txn *txn, mfs_id dir)
{
    MDB_cursor *c;
    if (mdb_cursor_open(txn, s->db[DB_DIRENTS], &c))
        return false;
    uint8_t k[ID_KEY_LEN];
    id_put(k, dir);
    MDB_val key = {ID_KEY_LEN, k}, val;
    int rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    bool empty =
        rc != 0 || key.mv_size < ID_LEN || memcmp(key.mv_data, k, ID_LEN);
    mdb_cursor_close(c);
    return empty;
}

/* ---- dirty name groups ---- */

static size_t group_hash(mfs_id dir, const char *name)
{
    uint64_t h = 1469598103934665603ull ^ dir.node ^ (dir.seq * 31);
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (size_t)(h ^ (h >> 29));
}

/* Rebuilds the index over the groups with room for twice as many. */
static bool group_index_grow(wtx *w)
{
    size_t slots = w->gslots ? w->gslots * 2 : 64;
    while (slots < 4 * (w->ngroups + 1))
        slots *= 2;
    uint32_t *ix = calloc(slots, sizeof(*ix));
    if (!ix)
        return false;
    for (size_t i = 0; i < w->ngroups; i++) {
        size_t j = group_hash(w->groups[i].dir, w->groups[i].name);
        while (ix[j & (slots - 1)])
            j++;
        ix[j & (slots - 1)] = (uint32_t)(i + 1);
    }
    free(w->gindex);
    w->gindex = ix;
    w->gslots = slots;
    return true;
}

/* Marks the group (dir, name) dirty, once: a hash index over the groups
 * (a linear search made a snapshot of 100,000 files take 34% of its
 * install in here). */
static void group_mark(wtx *w, mfs_id dir, const char *name)
{
    if (2 * (w->ngroups + 1) > w->gslots && !group_index_grow(w)) {
        wtx_fail(w, -ENOMEM);
        return;
    }
    size_t j = group_hash(dir, name);
    for (;; j++) {
        uint32_t k = w->gindex[j & (w->gslots - 1)];
        if (!k)
            break;
        if (id_eq(w->groups[k - 1].dir, dir) &&
            !strcmp(w->groups[k - 1].name, name))
            return;
    }
    if (w->ngroups == w->capgroups) {
        size_t cap = w->capgroups ? w->capgroups * 2 : 16;
        namekey *g = realloc(w->groups, cap * sizeof(*g));
        if (!g) {
            wtx_fail(w, -ENOMEM);
            return;
        }
        w->groups = g;
        w->capgroups = cap;
    }
    w->groups[w->ngroups].dir = dir;
    strcpy(w->groups[w->ngroups].name, name);
    w->ngroups++;
    w->gindex[j & (w->gslots - 1)] = (uint32_t)w->ngroups;
}

static size_t group_key(uint8_t *k, mfs_id dir, const char *name, mfs_id e)
{
    size_t n = strlen(name);
    id_put(k, dir);
    memcpy(k + GROUP_KEY_NAME, name, n);
    k[GROUP_KEY_NAME + n] = 0;
    id_put(k + GROUP_KEY_ENTRY(n), e);
    return GROUP_KEY_FIXED + n;
}

/* ---- entry state ---- */

/* Is dir a live directory (exists, known, not deleted)? */
static bool dir_live(mfs_store *s, MDB_txn *txn, mfs_id dir)
{
    if (id_eq(dir, MFS_ID_ROOT))
        return true;
    entry_rec er;
    if (entry_get(s, txn, dir, &er) || id_eq(er.parent, MFS_ID_TRASH))
        return false;
    inode_rec in;
    return inode_get(s, txn, dir, &in) == 0 && in.type == S_IFDIR;
}

bool view_resurrects(mfs_store *s, MDB_txn *txn, const entry_rec *er,
                     mfs_id *from)
{
    mfs_op mv;
    if (tree_last_move(s, txn, er->st, &mv, NULL))
        return false;
    if (from)
        *from = mv.from;
    mfs_stamp heads[MFS_MAX_HEADS];
    int n = content_heads(s, txn, er->inode, heads, MFS_MAX_HEADS);
    for (int i = 0; i < n; i++)
        if (!content_seen(s, txn, er->inode, mv.seen, mv.nseen, heads[i]) &&
            !content_knows_delete(s, txn, er->inode, heads[i], er->st))
            return true;
    return false;
}

bool view_deleted_shows(mfs_store *s, MDB_txn *txn, const entry_rec *er)
{
    return view_resurrects(s, txn, er, NULL);
}

static int refresh_entry(wtx *w, mfs_id e, idset *ccset)
{
    mfs_store *s = w->s;
    entry_rec er;
    int rc = entry_get(s, w->txn, e, &er);
    if (rc && rc != -ENOENT)
        return wtx_fail(w, rc);
    inode_rec in = {0};
    bool known =
        er.exists && inode_get(s, w->txn, er.inode, &in) == 0 && in.type != 0;
    vent_rec nv = {0};
    nv.exists = er.exists;
    nv.inode = er.exists ? er.inode : MFS_ID_NONE;
    nv.type = in.type;
    nv.st = er.exists ? er.st : (mfs_stamp){0, 0};
    if (known) {
        strcpy(nv.name, er.name);
        if (id_eq(er.parent, MFS_ID_TRASH)) {
            mfs_id from = MFS_ID_NONE;
            if (in.type != S_IFDIR && view_resurrects(s, w->txn, &er, &from)) {
                nv.visible = true;
                nv.dir = dir_live(s, w->txn, from) ? from : MFS_ID_LOSTFOUND;
            }
        } else {
            nv.live = true;
            nv.dir = er.parent;
            if (!id_eq(er.parent, MFS_ID_ROOT)) {
                entry_rec pe;
                inode_rec pin;
                bool pknown = entry_get(s, w->txn, er.parent, &pe) == 0 &&
                              inode_get(s, w->txn, er.parent, &pin) == 0 &&
                              pin.type == S_IFDIR;
                if (!pknown)
                    nv.visible = false; /* parent not here yet */
                else if (id_eq(pe.parent, MFS_ID_TRASH))
                    nv.dir = MFS_ID_LOSTFOUND, nv.visible = true;
                else
                    nv.visible = true;
            } else {
                nv.visible = true;
            }
        }
        if (nv.visible && id_eq(nv.dir, MFS_ID_LOSTFOUND) &&
            !dir_live(s, w->txn, MFS_ID_LOSTFOUND))
            nv.visible = false;
        if (nv.visible && id_eq(nv.dir, e))
            nv.visible = false; /* never its own parent */
    }
    vent_rec ov;
    rc = vent_get(s, w->txn, e, &ov);
    if (rc && rc != -ENOENT)
        return wtx_fail(w, rc);
    bool same =
        ov.visible == nv.visible && ov.live == nv.live &&
        id_eq(ov.inode, nv.inode) && ov.type == nv.type &&
        stamp_eq(ov.st, nv.st) &&
        (!nv.visible || (id_eq(ov.dir, nv.dir) && !strcmp(ov.name, nv.name)));
    if (same && ov.exists == nv.exists)
        return 0;
    uint8_t k[64 + MFS_NAME_MAX];
    if (ov.visible) {
        size_t kl = group_key(k, ov.dir, ov.name, e);
        tdel(w, DB_GROUPS, k, kl);
        dirent_del_if(w, ov.dir, ov.dname, OBJ_INODE, e, (mfs_stamp){0, 0});
        change_dirent(w, ov.dir, ov.dname);
        group_mark(w, ov.dir, ov.name);
    }
    /* the links and subdir counts follow visibility */
    uint8_t lk[PAIR_KEY_LEN];
    if (ov.visible) {
        pair_key_put(lk, ov.inode, e);
        tdel(w, DB_LINKS, lk, PAIR_KEY_LEN);
        if (count_add(w, DB_NLINK, ov.inode, -1) == 0)
            census_inode(w, ov.inode, -1);
        change_nlink(w, ov.inode);
        if (ov.type == S_IFDIR)
            nsub_add(w, ov.dir, -1);
        idset_add(ccset, ov.inode);
    }
    if (nv.visible) {
        size_t kl = group_key(k, nv.dir, nv.name, e);
        tput(w, DB_GROUPS, k, kl, "", 0);
        group_mark(w, nv.dir, nv.name);
        pair_key_put(lk, er.inode, e);
        tput(w, DB_LINKS, lk, PAIR_KEY_LEN, "", 0);
        if (count_add(w, DB_NLINK, er.inode, +1) == 1)
            census_inode(w, er.inode, +1);
        change_nlink(w, er.inode);
        if (in.type == S_IFDIR)
            nsub_add(w, nv.dir, +1);
        idset_add(ccset, er.inode);
        nv.dname[0] = 0;
    }
    if (nv.exists) {
        vent_put(w, e, &nv);
    } else {
        id_put(k, e);
        tdel(w, DB_VENT, k, ID_KEY_LEN);
    }
    /* children of a directory see it through its liveness, and so do the
     * entries deleted from it that may come back into it */
    if (ov.live != nv.live || ov.type != nv.type || ov.exists != nv.exists ||
        !nv.exists) {
        for (int db = DB_RCHILD; db == DB_RCHILD || db == DB_TFROM;
             db = db == DB_RCHILD ? DB_TFROM : -1) {
            MDB_cursor *c;
            if (mdb_cursor_open(w->txn, s->db[db], &c) == 0) {
                uint8_t pk[ID_KEY_LEN];
                id_put(pk, e);
                MDB_val key = {ID_KEY_LEN, pk}, val;
                int r2 = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
                while (r2 == 0 && key.mv_size == PAIR_KEY_LEN &&
                       !memcmp(key.mv_data, pk, ID_LEN)) {
                    idset_add(&w->touched_entries,
                              id_get((uint8_t *)key.mv_data + PAIR_KEY_B));
                    r2 = mdb_cursor_get(c, &key, &val, MDB_NEXT);
                }
                mdb_cursor_close(c);
            }
        }
    }
    return w->err;
}

/* ---- naming ---- */

/* The n-th conflict name (n >= 2 adds "-n" after the time) for the rare
 * case of two losers from one node within one second. */
static void conflict_name_n(char *out, const char *name, uint64_t node,
                            uint64_t ms, unsigned n)
{
    mfs_conflict_name(out, MFS_NAME_MAX + 1, name, node, ms);
    if (n < 2)
        return;
    char *at = strstr(out, ".conflict-");
    if (!at)
        return;
    at += strlen(".conflict-") + 16 + 1 + 15; /* node, '-', time */
    char suffix[16];
    int sl = snprintf(suffix, sizeof(suffix), "-%u", n);
    size_t len = strlen(out);
    if (len + (size_t)sl > MFS_NAME_MAX)
        return; /* no room: stays ambiguous (documented limit) */
    memmove(at + sl, at, strlen(at) + 1);
    memcpy(at, suffix, (size_t)sl);
}

static bool conflict_shaped(const char *name)
{
    return strstr(name, ".conflict-") != NULL;
}

/* ---- naming a directory with conflicts ----
 * The names in a directory with any conflict are a pure function of its
 * claimants, recomputed whole: every raw name (the newest entry of each
 * same-name group keeps it), then the other members of each group in
 * (raw name, newest first) order, then the conflict copies of files whose
 * first name is here, in (file name, version) order. A generated name
 * never takes a raw name or an earlier generated one: it gets "-2", "-3".
 * Directories without conflicts take the fast path in view_flush. */

typedef struct claimant {
    mfs_id e, inode; /* for copies: e = inode */
    mfs_stamp st;    /* group members: last move; copies: the version */
    uint32_t type;
    char *raw;   /* group name, or the file's display name (copies) */
    char *dname; /* assigned */
    bool copy;
} claimant;

static int cmp_claimant(const void *a, const void *b)
{
    const claimant *x = a, *y = b;
    if (x->copy != y->copy)
        return x->copy ? 1 : -1;
    int c = strcmp(x->raw, y->raw);
    if (c)
        return c;
    if (x->copy)
        return mfs_stamp_cmp(x->st, y->st);
    c = mfs_stamp_cmp(y->st, x->st); /* newest first */
    if (c)
        return c;
    if (x->e.node != y->e.node)
        return x->e.node < y->e.node ? -1 : 1;
    return x->e.seq < y->e.seq ? -1 : (x->e.seq > y->e.seq);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

typedef struct nameset {
    char **v;
    size_t n, cap;
    bool sorted;
} nameset;

static bool nameset_has(nameset *ns, const char *name)
{
    if (!ns->sorted) {
        if (ns->n > 1)
            qsort(ns->v, ns->n, sizeof(*ns->v), cmp_str);
        ns->sorted = true;
    }
    return ns->n && bsearch(&name, ns->v, ns->n, sizeof(*ns->v), cmp_str);
}

static int nameset_add(nameset *ns, char *name)
{
    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? ns->cap * 2 : 64;
        char **v = realloc(ns->v, cap * sizeof(*v));
        if (!v)
            return -ENOMEM;
        ns->v = v;
        ns->cap = cap;
    }
    ns->v[ns->n++] = name;
    ns->sorted = false;
    return 0;
}

/* n: names generated in dir (0: none, the fast path); shown: the
 * directory's entries listed under a generated name. */
static void cdirs_put(wtx *w, mfs_id dir, uint32_t n, uint32_t shown)
{
    uint8_t k[ID_KEY_LEN], b[CDIRS_VAL_LEN];
    id_put(k, dir);
    MDB_val v;
    if (tget(w->s, w->txn, DB_CDIRS, k, ID_KEY_LEN, &v) == 0)
        w->s->census.conflicts -= cdirs_shown(&v);
    if (!n) {
        tdel(w, DB_CDIRS, k, ID_KEY_LEN);
        return;
    }
    w->s->census.conflicts += shown;
    mfs_be32_put(b + CDIRS_VAL_N, n);
    mfs_be32_put(b + CDIRS_VAL_SHOWN, shown);
    tput(w, DB_CDIRS, k, ID_KEY_LEN, b, CDIRS_VAL_LEN);
}

static bool dir_has_conflicts(mfs_store *s, MDB_txn *txn, mfs_id dir)
{
    uint8_t k[ID_KEY_LEN];
    id_put(k, dir);
    MDB_val v;
    return tget(s, txn, DB_CDIRS, k, ID_KEY_LEN, &v) == 0;
}

static void ccopy_clear(wtx *w, mfs_id inode)
{
    uint8_t k[ID_KEY_LEN];
    id_put(k, inode);
    tdel_prefix(w, DB_CCOPY, k, ID_KEY_LEN, ID_LEN);
}

/* Appends a zeroed claimant; NULL when out of memory. */
static claimant *claimant_push(claimant **cl, size_t *n, size_t *cap)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        claimant *v = realloc(*cl, nc * sizeof(*v));
        if (!v)
            return NULL;
        *cl = v;
        *cap = nc;
    }
    claimant *m = &(*cl)[(*n)++];
    memset(m, 0, sizeof(*m));
    return m;
}

/* Gives m the first of its conflict names that nothing took yet. */
static int claimant_name(claimant *m, nameset *taken)
{
    char name[MFS_NAME_MAX + 1];
    for (unsigned kk = 1; kk == 1 || (kk < 10000 && nameset_has(taken, name));
         kk++)
        conflict_name_n(name, m->raw, m->st.node, m->st.hlc >> 16, kk);
    m->dname = strdup(name);
    return m->dname ? nameset_add(taken, m->dname) : -ENOMEM;
}

/* A name dir shows and its inode number, before rename_dir writes the
 * directory anew: it reports only the names whose entry changes (the
 * kernel caches the others' entries for long, docs/FS.md "Caching"). */
typedef struct shown_name {
    char *name;
    uint64_t ino;
    bool kept; /* written again with the same inode number */
} shown_name;

static int cmp_shown(const void *a, const void *b)
{
    return strcmp(((const shown_name *)a)->name, ((const shown_name *)b)->name);
}

/* The names dir shows now, sorted; *n of them in *out (free with
 * shown_free). */
static int shown_names(wtx *w, mfs_id dir, shown_name **out, size_t *n)
{
    shown_name *v = NULL;
    size_t nv = 0, cap = 0;
    MDB_cursor *c;
    int rc = mdb_cursor_open(w->txn, w->s->db[DB_DIRENTS], &c);
    if (rc)
        return mdb_to_errno(rc);
    uint8_t pk[ID_KEY_LEN];
    id_put(pk, dir);
    MDB_val key = {ID_KEY_LEN, pk}, val;
    int r = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (r == 0 && key.mv_size > DIRENT_KEY_NAME &&
           !memcmp(key.mv_data, pk, ID_LEN)) {
        dirent_rec d;
        if (nv == cap) {
            cap = cap ? cap * 2 : 64;
            shown_name *nvv = realloc(v, cap * sizeof(*v));
            if (!nvv) {
                rc = -ENOMEM;
                break;
            }
            v = nvv;
        }
        v[nv].name = strndup((char *)key.mv_data + DIRENT_KEY_NAME,
                             key.mv_size - DIRENT_KEY_NAME);
        if (!v[nv].name) {
            rc = -ENOMEM;
            break;
        }
        v[nv].ino = view_dirent_decode(&val, &d) == 0 ? d.ino : 0;
        v[nv].kept = false;
        nv++;
        r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (nv > 1)
        qsort(v, nv, sizeof(*v), cmp_shown);
    *out = v;
    *n = nv;
    return rc;
}

static void shown_free(shown_name *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
}

/* Was name shown with ino before? Marks it kept either way it is written
 * again; true when its entry is unchanged. */
static bool shown_same(shown_name *v, size_t n, const char *name, uint64_t ino)
{
    shown_name k = {.name = (char *)name};
    shown_name *o = n ? bsearch(&k, v, n, sizeof(*v), cmp_shown) : NULL;
    if (!o)
        return false;
    bool same = o->ino == ino && !o->kept;
    o->kept = true;
    return same;
}

static int rename_dir(wtx *w, mfs_id dir)
{
    mfs_store *s = w->s;
    claimant *cl = NULL;
    size_t n = 0, cap = 0;
    nameset taken = {0};
    int rc = 0;
    /* 1. group members */
    MDB_cursor *c;
    if ((rc = mdb_cursor_open(w->txn, s->db[DB_GROUPS], &c)))
        return wtx_fail(w, rc);
    uint8_t pk[ID_KEY_LEN];
    id_put(pk, dir);
    MDB_val key = {ID_KEY_LEN, pk}, val;
    int r = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (r == 0 && key.mv_size > GROUP_KEY_FIXED &&
           !memcmp(key.mv_data, pk, ID_LEN)) {
        size_t nl = key.mv_size - GROUP_KEY_FIXED;
        claimant *m = claimant_push(&cl, &n, &cap);
        if (m)
            m->raw = strndup((char *)key.mv_data + GROUP_KEY_NAME, nl);
        if (!m || !m->raw) {
            rc = -ENOMEM;
            break;
        }
        m->e = id_get((uint8_t *)key.mv_data + GROUP_KEY_ENTRY(nl));
        r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    size_t nmembers = n;
    for (size_t i = 0; i < nmembers && !rc; i++) {
        vent_rec vr;
        if (vent_get(s, w->txn, cl[i].e, &vr) == 0) {
            cl[i].st = vr.st;
            cl[i].inode = vr.inode;
            cl[i].type = vr.type;
        }
    }
    if (!rc && nmembers > 1)
        qsort(cl, nmembers, sizeof(*cl), cmp_claimant);
    /* 2. raw names: the newest member of each group keeps its name */
    for (size_t i = 0; i < nmembers && !rc; i++)
        if (i == 0 || strcmp(cl[i].raw, cl[i - 1].raw)) {
            cl[i].dname = strdup(cl[i].raw);
            rc = cl[i].dname ? nameset_add(&taken, cl[i].dname) : -ENOMEM;
        }
    /* 3. the other members */
    uint32_t generated = 0;
    for (size_t i = 0; i < nmembers && !rc; i++) {
        if (cl[i].dname)
            continue;
        rc = claimant_name(&cl[i], &taken);
        generated++;
    }
    /* 4. conflict copies of files whose first name is here */
    size_t ncopies_start = n;
    for (size_t i = 0; i < nmembers && !rc; i++) {
        if (cl[i].type != S_IFREG)
            continue;
        mfs_id pe;
        if (view_primary(s, w->txn, cl[i].inode, &pe, NULL, NULL) ||
            !id_eq(pe, cl[i].e))
            continue;
        ccopy_clear(w, cl[i].inode); /* rewritten below */
        mfs_stamp heads[MFS_MAX_HEADS];
        int nh = content_heads(s, w->txn, cl[i].inode, heads, MFS_MAX_HEADS);
        for (int h = 0; h < nh - 1 && !rc; h++) {
            mfs_id inode = cl[i].inode;
            const char *base = cl[i].dname; /* before cl may move */
            char *raw = strdup(base);
            claimant *m = raw ? claimant_push(&cl, &n, &cap) : NULL;
            if (!m) {
                free(raw);
                rc = -ENOMEM;
                break;
            }
            m->copy = true;
            m->e = m->inode = inode;
            m->st = heads[h];
            m->type = S_IFREG;
            m->raw = raw;
        }
    }
    if (!rc && n - ncopies_start > 1)
        qsort(cl + ncopies_start, n - ncopies_start, sizeof(*cl), cmp_claimant);
    for (size_t i = ncopies_start; i < n && !rc; i++) {
        rc = claimant_name(&cl[i], &taken);
        generated++;
    }
    /* 5. write the directory anew; the names whose entry changed are
     * reported (a name written twice below is, its second entry wins) */
    shown_name *was = NULL;
    size_t nwas = 0;
    if (!rc)
        rc = shown_names(w, dir, &was, &nwas);
    bool changed = false;
    if (!rc)
        tdel_prefix(w, DB_DIRENTS, pk, ID_KEY_LEN, ID_LEN);
    for (size_t i = 0; i < n && !rc && !w->err; i++) {
        claimant *m = &cl[i];
        objkey ok = m->copy ? obj_ccopy(m->inode, m->st) : obj_inode(m->inode);
        dirent_rec d = {.kind = m->copy ? OBJ_CCOPY : OBJ_INODE,
                        .ino = ino_assign(w, &ok),
                        .type = m->type,
                        .entry = m->e,
                        .inode = m->inode,
                        .ver = m->copy ? m->st : (mfs_stamp){0, 0}};
        dirent_put(w, dir, m->dname, &d);
        if (!shown_same(was, nwas, m->dname, d.ino)) {
            change_dirent(w, dir, m->dname);
            changed = true;
        }
        if (m->copy) {
            uint8_t ck[VKEY_LEN], buf[64 + MFS_NAME_MAX];
            vkey_put(ck, m->inode, m->st);
            mfs_wbuf wb;
            mfs_wbuf_init(&wb, buf, sizeof(buf));
            mfs_wput_id(&wb, dir);
            SCHEMA_WAT(&wb, CCOPY_NAME);
            mfs_put_str16(&wb, m->dname, strlen(m->dname));
            tput(w, DB_CCOPY, ck, VKEY_LEN, buf, wb.len);
        } else {
            vent_rec vr;
            if (vent_get(s, w->txn, m->e, &vr) == 0 &&
                strcmp(vr.dname, m->dname)) {
                change_dirent(w, dir, vr.dname);
                strcpy(vr.dname, m->dname);
                vent_put(w, m->e, &vr);
            }
        }
    }
    for (size_t i = 0; i < nwas; i++)
        if (!was[i].kept) { /* gone */
            change_dirent(w, dir, was[i].name);
            changed = true;
        }
    if (changed)
        change_dirent(w, dir, ""); /* its attributes and listing */
    shown_free(was, nwas);
    /* what the listing shows under a generated name: the last entry
     * written under each name */
    uint32_t shown = 0;
    nameset final = {0};
    for (size_t i = n; i-- > 0 && !rc;) {
        if (nameset_has(&final, cl[i].dname))
            continue;
        rc = nameset_add(&final, cl[i].dname);
        if (cl[i].copy || strcmp(cl[i].dname, cl[i].raw))
            shown++;
    }
    free(final.v);
    if (!rc)
        cdirs_put(w, dir, generated, shown);
    for (size_t i = 0; i < n; i++) {
        free(cl[i].raw);
        free(cl[i].dname);
    }
    free(cl);
    free(taken.v);
    return rc ? wtx_fail(w, rc) : w->err;
}

/* The fast path for a directory without conflicts: one entry per name. A
 * group that is not that simple sends its directory to rename_dir. */
static int rename_simple(wtx *w, const namekey *g, idset *dirs, idset *ccset)
{
    mfs_store *s = w->s;
    if (dir_has_conflicts(s, w->txn, g->dir) || conflict_shaped(g->name)) {
        idset_add(dirs, g->dir);
        return 0;
    }
    uint8_t k[64 + MFS_NAME_MAX];
    size_t n = strlen(g->name);
    id_put(k, g->dir);
    memcpy(k + GROUP_KEY_NAME, g->name, n);
    k[GROUP_KEY_NAME + n] = 0;
    size_t pl = GROUP_KEY_ENTRY(n);
    MDB_cursor *c;
    int rc = mdb_cursor_open(w->txn, s->db[DB_GROUPS], &c);
    if (rc)
        return wtx_fail(w, rc);
    MDB_val key = {pl, k}, val;
    size_t nm = 0;
    mfs_id e = MFS_ID_NONE;
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && nm < 2 && key.mv_size == pl + ID_LEN &&
           !memcmp(key.mv_data, k, pl)) {
        e = id_get((uint8_t *)key.mv_data + pl);
        nm++;
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (nm == 0)
        return 0;
    vent_rec vr;
    if (nm > 1 || vent_get(s, w->txn, e, &vr)) {
        idset_add(dirs, g->dir);
        return 0;
    }
    dirent_rec cur;
    if (view_lookup(s, w->txn, g->dir, g->name, &cur) == 0 &&
        (cur.kind != OBJ_INODE || !id_eq(cur.entry, e))) {
        idset_add(dirs, g->dir); /* the name is held by something else */
        return 0;
    }
    objkey ok = obj_inode(vr.inode);
    dirent_rec d = {.kind = OBJ_INODE,
                    .ino = ino_assign(w, &ok),
                    .type = vr.type,
                    .entry = e,
                    .inode = vr.inode};
    dirent_put(w, g->dir, g->name, &d);
    if (strcmp(vr.dname, g->name)) {
        change_dirent(w, g->dir, g->name);
        strcpy(vr.dname, g->name);
        vent_put(w, e, &vr);
        idset_add(ccset, vr.inode); /* copies are named after it */
    }
    return w->err;
}

/* Inodes whose heads or names changed: the directories their copies were
 * and will be shown in get renamed. */
static void copies_dirs(wtx *w, mfs_id inode, idset *dirs)
{
    mfs_store *s = w->s;
    MDB_cursor *c;
    if (mdb_cursor_open(w->txn, s->db[DB_CCOPY], &c) == 0) {
        uint8_t k[ID_KEY_LEN];
        id_put(k, inode);
        MDB_val key = {ID_KEY_LEN, k}, val;
        int rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
        while (rc == 0 && key.mv_size == VKEY_LEN &&
               !memcmp(key.mv_data, k, ID_LEN)) {
            if (val.mv_size >= CCOPY_DIR + ID_LEN) /* where it shows */
                idset_add(dirs, id_get((uint8_t *)val.mv_data + CCOPY_DIR));
            rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
        }
        mdb_cursor_close(c);
    }
    mfs_stamp heads[2];
    mfs_id dir;
    if (content_heads(s, w->txn, inode, heads, 2) >= 2 &&
        view_primary(s, w->txn, inode, NULL, &dir, NULL) == 0)
        idset_add(dirs, dir);
    else
        ccopy_clear(w, inode); /* no copies shown any more */
}

static int cmp_id(const void *a, const void *b)
{
    const mfs_id *x = a, *y = b;
    if (x->node != y->node)
        return x->node < y->node ? -1 : 1;
    return x->seq < y->seq ? -1 : (x->seq > y->seq);
}

static void sort_dedup(idset *s)
{
    if (s->n < 2)
        return;
    qsort(s->v, s->n, sizeof(*s->v), cmp_id);
    size_t o = 1;
    for (size_t i = 1; i < s->n; i++)
        if (!id_eq(s->v[i], s->v[o - 1]))
            s->v[o++] = s->v[i];
    s->n = o;
}

int view_flush(wtx *w)
{
    idset ccset = {0};
    while (!w->err && (w->touched_inodes.n || w->touched_entries.n)) {
        idset inodes = w->touched_inodes;
        memset(&w->touched_inodes, 0, sizeof(idset));
        sort_dedup(&inodes);
        for (size_t i = 0; i < inodes.n && !w->err; i++) {
            content_refresh(w, inodes.v[i]);
            idset_add(&ccset, inodes.v[i]);
            /* every entry of the inode may appear or vanish with it */
            MDB_cursor *c;
            if (mdb_cursor_open(w->txn, w->s->db[DB_ILINKS], &c))
                continue;
            uint8_t k[ID_KEY_LEN];
            id_put(k, inodes.v[i]);
            MDB_val key = {ID_KEY_LEN, k}, val;
            int rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
            while (rc == 0 && key.mv_size == PAIR_KEY_LEN &&
                   !memcmp(key.mv_data, k, ID_LEN)) {
                idset_add(&w->touched_entries,
                          id_get((uint8_t *)key.mv_data + PAIR_KEY_B));
                rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
            }
            mdb_cursor_close(c);
        }
        idset_free(&inodes);
        idset entries = w->touched_entries;
        memset(&w->touched_entries, 0, sizeof(idset));
        sort_dedup(&entries);
        for (size_t i = 0; i < entries.n && !w->err; i++)
            refresh_entry(w, entries.v[i], &ccset);
        idset_free(&entries);
    }
    idset dirs = {0};
    for (size_t i = 0; i < w->ngroups && !w->err; i++)
        rename_simple(w, &w->groups[i], &dirs, &ccset);
    if (w->ngroups)
        memset(w->gindex, 0, w->gslots * sizeof(*w->gindex));
    w->ngroups = 0;
    sort_dedup(&ccset);
    for (size_t i = 0; i < ccset.n && !w->err; i++)
        copies_dirs(w, ccset.v[i], &dirs);
    sort_dedup(&dirs);
    for (size_t i = 0; i < dirs.n && !w->err; i++)
        rename_dir(w, dirs.v[i]);
    idset_free(&dirs);
    idset_free(&ccset);
    return w->err;
}

static int tx_rebuild(wtx *w, void *arg)
{
    (void)arg;
    static const int derived[] = {DB_DIRENTS, DB_VENT,  DB_GROUPS, DB_LINKS,
                                  DB_NSUB,    DB_CCOPY, DB_CDIRS,  DB_NLINK};
    for (size_t i = 0; i < sizeof(derived) / sizeof(derived[0]); i++) {
        wtx_undo_lost(w);
        int rc = mdb_drop(w->txn, w->s->db[derived[i]], 0);
        wtx_mut(w);
        if (rc)
            return wtx_fail(w, rc);
    }
    MDB_cursor *c;
    int rc = mdb_cursor_open(w->txn, w->s->db[DB_ENTRIES], &c);
    if (rc)
        return wtx_fail(w, rc);
    MDB_val key, val;
    rc = mdb_cursor_get(c, &key, &val, MDB_FIRST);
    while (rc == 0) {
        mfs_id e = id_get(key.mv_data);
        view_touch_entry(w, e);
        entry_rec er;
        if (entry_get(w->s, w->txn, e, &er) == 0)
            view_touch_inode(w, er.inode);
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    w->recount = true;
    return w->err;
}

int mfs_store_view_rebuild(mfs_store *s)
{
    return store_write(s, tx_rebuild, NULL);
}
