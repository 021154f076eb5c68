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
    mfs_id inode;  /* the inode it names */
    uint32_t type; /* that inode's type */
    mfs_stamp st;  /* its last move: orders same-name entries */
    char name[MFS_NAME_MAX + 1];  /* raw name */
    char dname[MFS_NAME_MAX + 1]; /* display name ("" until named) */
} vent_rec;

void view_touch_entry(wtx *w, mfs_id e)
{
    idset_add(&w->touched_entries, e);
}

void view_touch_inode(wtx *w, mfs_id i)
{
    idset_add(&w->touched_inodes, i);
}

static int vent_get(mfs_store *s, MDB_txn *txn, mfs_id e, vent_rec *out)
{
    memset(out, 0, sizeof(*out));
    uint8_t k[16];
    id_put(k, e);
    MDB_val v;
    int rc = tget(s, txn, DB_VENT, k, 16, &v);
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
    uint8_t buf[256 + 2 * MFS_NAME_MAX], k[16];
    mfs_wbuf wb;
    mfs_wbuf_init(&wb, buf, sizeof(buf));
    mfs_put_u8(&wb, vr->visible);
    mfs_put_u8(&wb, vr->live);
    mfs_wput_id(&wb, vr->dir);
    mfs_wput_id(&wb, vr->inode);
    mfs_put_u32(&wb, vr->type);
    mfs_wput_stamp(&wb, vr->st);
    mfs_put_str16(&wb, vr->name, strlen(vr->name));
    mfs_put_str16(&wb, vr->dname, strlen(vr->dname));
    if (wb.err)
        return wtx_fail(w, -EIO);
    id_put(k, e);
    return tput(w, DB_VENT, k, 16, buf, wb.len);
}

static size_t dirent_key(uint8_t *k, mfs_id dir, const char *name)
{
    size_t n = strlen(name);
    id_put(k, dir);
    memcpy(k + 16, name, n);
    return 16 + n;
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
    return r.err ? -EIO : 0;
}

static int dirent_put(wtx *w, mfs_id dir, const char *name, const dirent_rec *d)
{
    uint8_t k[16 + MFS_NAME_MAX], buf[128];
    size_t kl = dirent_key(k, dir, name);
    mfs_wbuf wb;
    mfs_wbuf_init(&wb, buf, sizeof(buf));
    mfs_put_u8(&wb, d->kind);
    mfs_put_u64(&wb, d->ino);
    mfs_put_u32(&wb, d->type);
    mfs_wput_id(&wb, d->entry);
    mfs_wput_id(&wb, d->inode);
    mfs_wput_stamp(&wb, d->ver);
    return tput(w, DB_DIRENTS, k, kl, buf, wb.len);
}

int view_lookup(mfs_store *s, MDB_txn *txn, mfs_id dir, const char *name,
                dirent_rec *out)
{
    uint8_t k[16 + MFS_NAME_MAX];
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
    uint8_t k[16 + MFS_NAME_MAX];
    size_t kl = dirent_key(k, dir, name);
    tdel(w, DB_DIRENTS, k, kl);
}

static void change_dirent(wtx *w, mfs_id dir, const char *name)
{
    if (!w->remote)
        return;
    objkey ok = obj_inode(dir);
    uint64_t ino;
    if (ino_of_obj(w->s, w->txn, &ok, &ino) == 0)
        wtx_change(w, MFS_CHANGE_ENTRY, ino, name);
}

static void nsub_add(wtx *w, mfs_id dir, int delta)
{
    uint8_t k[16], b[4];
    id_put(k, dir);
    MDB_val v;
    int64_t n = 0;
    if (tget(w->s, w->txn, DB_NSUB, k, 16, &v) == 0 && v.mv_size == 4)
        n = mfs_be32_get(v.mv_data);
    n += delta;
    if (n <= 0) {
        tdel(w, DB_NSUB, k, 16);
        return;
    }
    mfs_be32_put(b, (uint32_t)n);
    tput(w, DB_NSUB, k, 16, b, 4);
}

uint32_t view_nlink(mfs_store *s, MDB_txn *txn, mfs_id inode, uint32_t type)
{
    uint8_t k[16];
    id_put(k, inode);
    MDB_val v;
    if (type == S_IFDIR) {
        uint32_t n = 0;
        if (tget(s, txn, DB_NSUB, k, 16, &v) == 0 && v.mv_size == 4)
            n = mfs_be32_get(v.mv_data);
        return 2 + n;
    }
    MDB_cursor *c;
    if (mdb_cursor_open(txn, s->db[DB_LINKS], &c))
        return 1;
    MDB_val key = {16, k}, val;
    uint32_t n = 0;
    int rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && !memcmp(key.mv_data, k, 16)) {
        n++;
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    return n;
}

int view_primary(mfs_store *s, MDB_txn *txn, mfs_id inode, mfs_id *entry,
                 mfs_id *dir, char *dname)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, s->db[DB_LINKS], &c);
    if (rc)
        return mdb_to_errno(rc);
    uint8_t k[16];
    id_put(k, inode);
    MDB_val key = {16, k}, val;
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    if (rc || memcmp(key.mv_data, k, 16)) {
        mdb_cursor_close(c);
        return -ENOENT;
    }
    mfs_id e = id_get((uint8_t *)key.mv_data + 16);
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
    uint8_t k[16];
    id_put(k, dir);
    MDB_val key = {16, k}, val;
    int rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    bool empty = rc != 0 || key.mv_size < 16 || memcmp(key.mv_data, k, 16);
    mdb_cursor_close(c);
    return empty;
}

/* ---- dirty name groups ---- */

static void group_mark(wtx *w, mfs_id dir, const char *name)
{
    for (size_t i = w->gdone; i < w->ngroups; i++)
        if (id_eq(w->groups[i].dir, dir) && !strcmp(w->groups[i].name, name))
            return;
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
}

static size_t group_key(uint8_t *k, mfs_id dir, const char *name, mfs_id e)
{
    size_t n = strlen(name);
    id_put(k, dir);
    memcpy(k + 16, name, n);
    k[16 + n] = 0;
    id_put(k + 17 + n, e);
    return 33 + n;
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

/* Has the inode a head the deleting move had not seen? */
static bool resurrects(wtx *w, const entry_rec *er, mfs_id *from)
{
    mfs_op mv;
    if (tree_last_move(w->s, w->txn, er->st, &mv, NULL))
        return false;
    *from = mv.from;
    mfs_stamp heads[64];
    int n = content_heads(w->s, w->txn, er->inode, heads, 64);
    for (int i = 0; i < n; i++) {
        bool seen = false;
        for (uint32_t j = 0; j < mv.nseen && !seen; j++)
            seen = stamp_eq(heads[i], stamp_get(mv.seen + (size_t)j * 16));
        if (!seen)
            return true;
    }
    return false;
}

static int refresh_entry(wtx *w, mfs_id e, idset *ccset)
{
    mfs_store *s = w->s;
    entry_rec er;
    int rc = entry_get(s, w->txn, e, &er);
    if (rc && rc != -ENOENT)
        return wtx_fail(w, rc);
    inode_rec in = {0};
    bool known = er.exists && inode_get(s, w->txn, er.inode, &in) == 0 &&
                 in.type != 0;
    vent_rec nv = {0};
    nv.exists = er.exists;
    nv.inode = er.exists ? er.inode : MFS_ID_NONE;
    nv.type = in.type;
    nv.st = er.exists ? er.st : (mfs_stamp){0, 0};
    if (known) {
        strcpy(nv.name, er.name);
        if (id_eq(er.parent, MFS_ID_TRASH)) {
            mfs_id from = MFS_ID_NONE;
            if (in.type != S_IFDIR && resurrects(w, &er, &from)) {
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
    bool same = ov.visible == nv.visible && ov.live == nv.live &&
                id_eq(ov.inode, nv.inode) && ov.type == nv.type &&
                stamp_eq(ov.st, nv.st) &&
                (!nv.visible ||
                 (id_eq(ov.dir, nv.dir) && !strcmp(ov.name, nv.name)));
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
    uint8_t lk[32];
    if (ov.visible) {
        id_put(lk, ov.inode);
        id_put(lk + 16, e);
        tdel(w, DB_LINKS, lk, 32);
        if (ov.type == S_IFDIR)
            nsub_add(w, ov.dir, -1);
        idset_add(ccset, ov.inode);
    }
    if (nv.visible) {
        size_t kl = group_key(k, nv.dir, nv.name, e);
        tput(w, DB_GROUPS, k, kl, "", 0);
        group_mark(w, nv.dir, nv.name);
        id_put(lk, er.inode);
        id_put(lk + 16, e);
        tput(w, DB_LINKS, lk, 32, "", 0);
        if (in.type == S_IFDIR)
            nsub_add(w, nv.dir, +1);
        idset_add(ccset, er.inode);
        nv.dname[0] = 0;
    }
    if (nv.exists) {
        vent_put(w, e, &nv);
    } else {
        id_put(k, e);
        tdel(w, DB_VENT, k, 16);
    }
    /* children of a directory see it through its liveness, and so do the
     * entries deleted from it that may come back into it */
    if (ov.live != nv.live || !nv.exists) {
        for (int db = DB_RCHILD; db == DB_RCHILD || db == DB_TFROM;
             db = db == DB_RCHILD ? DB_TFROM : -1) {
        MDB_cursor *c;
        if (mdb_cursor_open(w->txn, s->db[db], &c) == 0) {
            uint8_t pk[16];
            id_put(pk, e);
            MDB_val key = {16, pk}, val;
            int r2 = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
            while (r2 == 0 && key.mv_size == 32 && !memcmp(key.mv_data, pk, 16)) {
                idset_add(&w->touched_entries,
                          id_get((uint8_t *)key.mv_data + 16));
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

/* Is name the raw name of some visible entry in dir? Generated (conflict)
 * names never take a raw name: raw names win, deterministically. */
static bool raw_taken(wtx *w, mfs_id dir, const char *name)
{
    uint8_t k[64 + MFS_NAME_MAX];
    size_t n = strlen(name);
    id_put(k, dir);
    memcpy(k + 16, name, n);
    k[16 + n] = 0;
    size_t pl = 17 + n;
    MDB_cursor *c;
    if (mdb_cursor_open(w->txn, w->s->db[DB_GROUPS], &c))
        return false;
    MDB_val key = {pl, k}, val;
    int rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    bool taken = rc == 0 && key.mv_size == pl + 16 && !memcmp(key.mv_data, k, pl);
    mdb_cursor_close(c);
    return taken;
}

/* If name has the shape of a generated conflict name, the group and copies
 * it would be generated from are renamed again: a raw name that appears or
 * goes may move their names. */
static void mark_generated_base(wtx *w, mfs_id dir, const char *name,
                                idset *ccset)
{
    const char *at = strstr(name, ".conflict-");
    if (!at)
        return;
    size_t stem = (size_t)(at - name);
    const char *rest = at + strlen(".conflict-");
    if (strlen(rest) < 16 + 1 + 15 || rest[16] != '-')
        return;
    rest += 16 + 1 + 15;
    if (rest[0] == '-') /* a "-n" suffix */
        while (*++rest >= '0' && *rest <= '9')
            ;
    char base[MFS_NAME_MAX + 1];
    size_t extlen = strlen(rest);
    if (stem + extlen > MFS_NAME_MAX || stem + extlen == 0)
        return;
    memcpy(base, name, stem);
    memcpy(base + stem, rest, extlen);
    base[stem + extlen] = 0;
    group_mark(w, dir, base);
    dirent_rec d;
    if (view_lookup(w->s, w->txn, dir, base, &d) == 0 && d.kind == OBJ_INODE)
        idset_add(ccset, d.inode);
}

static bool name_taken(char (*names)[MFS_NAME_MAX + 1], size_t n,
                       const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(names[i], name))
            return true;
    return false;
}

typedef struct member {
    mfs_id e, inode;
    mfs_stamp st;
    uint32_t type;
} member;

static int cmp_member(const void *a, const void *b)
{
    const member *x = a, *y = b;
    int c = mfs_stamp_cmp(y->st, x->st); /* newest first */
    if (c)
        return c;
    if (x->e.node != y->e.node)
        return x->e.node < y->e.node ? -1 : 1;
    return x->e.seq < y->e.seq ? -1 : (x->e.seq > y->e.seq);
}

static int rename_group(wtx *w, const namekey *g, idset *ccset)
{
    mfs_store *s = w->s;
    uint8_t k[64 + MFS_NAME_MAX];
    size_t n = strlen(g->name);
    id_put(k, g->dir);
    memcpy(k + 16, g->name, n);
    k[16 + n] = 0;
    size_t pl = 17 + n;
    member *m = NULL;
    size_t nm = 0, cap = 0;
    MDB_cursor *c;
    int rc = mdb_cursor_open(w->txn, s->db[DB_GROUPS], &c);
    if (rc)
        return wtx_fail(w, rc);
    MDB_val key = {pl, k}, val;
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size == pl + 16 && !memcmp(key.mv_data, k, pl)) {
        if (nm == cap) {
            cap = cap ? cap * 2 : 4;
            member *nmv = realloc(m, cap * sizeof(*m));
            if (!nmv)
                break;
            m = nmv;
        }
        m[nm++].e = id_get((uint8_t *)key.mv_data + pl);
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    for (size_t i = 0; i < nm; i++) {
        entry_rec er;
        inode_rec in;
        entry_get(s, w->txn, m[i].e, &er);
        m[i].st = er.st;
        m[i].inode = er.inode;
        m[i].type = inode_get(s, w->txn, er.inode, &in) == 0 ? in.type : 0;
    }
    if (nm > 1)
        qsort(m, nm, sizeof(*m), cmp_member);
    vent_rec *vr = calloc(nm ? nm : 1, sizeof(*vr));
    if (!vr) {
        free(m);
        return wtx_fail(w, -ENOMEM);
    }
    for (size_t i = 0; i < nm; i++) {
        vent_get(s, w->txn, m[i].e, &vr[i]);
        dirent_del_if(w, g->dir, vr[i].dname, OBJ_INODE, m[i].e,
                      (mfs_stamp){0, 0});
    }
    char (*used)[MFS_NAME_MAX + 1] = calloc(nm ? nm : 1, sizeof(*used));
    if (!used) {
        free(vr);
        free(m);
        return wtx_fail(w, -ENOMEM);
    }
    for (size_t i = 0; i < nm && !w->err; i++) {
        char dname[MFS_NAME_MAX + 1];
        if (i == 0)
            strcpy(dname, g->name);
        else
            for (unsigned kk = 1;
                 kk == 1 || name_taken(used, i, dname) ||
                 (kk < 1000 && raw_taken(w, g->dir, dname));
                 kk++)
                conflict_name_n(dname, g->name, m[i].st.node,
                                m[i].st.hlc >> 16, kk);
        strcpy(used[i], dname);
        objkey ok = obj_inode(m[i].inode);
        dirent_rec d = {.kind = OBJ_INODE, .ino = ino_assign(w, &ok),
                        .type = m[i].type, .entry = m[i].e,
                        .inode = m[i].inode};
        dirent_put(w, g->dir, dname, &d);
        if (strcmp(vr[i].dname, dname)) {
            change_dirent(w, g->dir, vr[i].dname);
            change_dirent(w, g->dir, dname);
            strcpy(vr[i].dname, dname);
            vent_put(w, m[i].e, &vr[i]);
            idset_add(ccset, m[i].inode); /* copies are named after it */
        }
    }
    if (nm)
        idset_add(ccset, m[0].inode); /* its copies are named after the losers */
    mark_generated_base(w, g->dir, g->name, ccset);
    free(used);
    free(vr);
    free(m);
    return w->err;
}

static int refresh_ccopies(wtx *w, mfs_id inode)
{
    mfs_store *s = w->s;
    /* remove the copies shown so far */
    MDB_cursor *c;
    int rc = mdb_cursor_open(w->txn, s->db[DB_CCOPY], &c);
    if (rc)
        return wtx_fail(w, rc);
    uint8_t k[16];
    id_put(k, inode);
    MDB_val key = {16, k}, val;
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size == 32 && !memcmp(key.mv_data, k, 16)) {
        mfs_stamp ver = stamp_get((uint8_t *)key.mv_data + 16);
        mfs_rbuf r;
        mfs_rbuf_init(&r, val.mv_data, val.mv_size);
        mfs_id dir = mfs_rget_id(&r);
        size_t n;
        const uint8_t *p = mfs_get_str16(&r, &n, MFS_NAME_MAX);
        char name[MFS_NAME_MAX + 1] = "";
        if (p) {
            memcpy(name, p, n);
            name[n] = 0;
        }
        dirent_del_if(w, dir, name, OBJ_CCOPY, inode, ver);
        change_dirent(w, dir, name);
        rc = mdb_cursor_del(c, 0);
        if (rc) {
            wtx_fail(w, rc);
            break;
        }
        rc = mdb_cursor_get(c, &key, &val, MDB_GET_CURRENT);
    }
    mdb_cursor_close(c);
    if (w->err)
        return w->err;
    mfs_stamp heads[64];
    int nh = content_heads(s, w->txn, inode, heads, 64);
    if (nh <= 1)
        return 0;
    mfs_id e, dir;
    char raw[MFS_NAME_MAX + 1];
    if (view_primary(s, w->txn, inode, &e, &dir, raw))
        return 0;
    /* The only other names of this shape in dir are the losers of the
     * primary's own same-name group (named first, in rename_group); the
     * copies take the next free suffix after them. */
    char (*used)[MFS_NAME_MAX + 1] = calloc(64 + 64, sizeof(*used));
    if (!used)
        return wtx_fail(w, -ENOMEM);
    size_t nused = 0;
    entry_rec per;
    if (entry_get(s, w->txn, e, &per) == 0 && !strcmp(per.name, raw)) {
        uint8_t gk[64 + MFS_NAME_MAX];
        size_t rl = strlen(raw);
        id_put(gk, dir);
        memcpy(gk + 16, raw, rl);
        gk[16 + rl] = 0;
        size_t pl = 17 + rl;
        MDB_cursor *gc;
        if (mdb_cursor_open(w->txn, s->db[DB_GROUPS], &gc) == 0) {
            MDB_val gkey = {pl, gk}, gval;
            int r2 = mdb_cursor_get(gc, &gkey, &gval, MDB_SET_RANGE);
            while (r2 == 0 && nused < 64 && gkey.mv_size == pl + 16 &&
                   !memcmp(gkey.mv_data, gk, pl)) {
                vent_rec mv;
                if (vent_get(s, w->txn, id_get((uint8_t *)gkey.mv_data + pl),
                             &mv) == 0)
                    strcpy(used[nused++], mv.dname);
                r2 = mdb_cursor_get(gc, &gkey, &gval, MDB_NEXT);
            }
            mdb_cursor_close(gc);
        }
    }
    for (int i = 0; i < nh - 1 && !w->err; i++) {
        char name[MFS_NAME_MAX + 1];
        for (unsigned kk = 1;
             kk == 1 || name_taken(used, nused, name) ||
             (kk < 1000 && raw_taken(w, dir, name));
             kk++)
            conflict_name_n(name, raw, heads[i].node, heads[i].hlc >> 16, kk);
        strcpy(used[nused++], name);
        objkey ok = obj_ccopy(inode, heads[i]);
        dirent_rec d = {.kind = OBJ_CCOPY, .ino = ino_assign(w, &ok),
                        .type = S_IFREG, .entry = inode, .inode = inode,
                        .ver = heads[i]};
        dirent_put(w, dir, name, &d);
        change_dirent(w, dir, name);
        uint8_t ck[32], buf[64 + MFS_NAME_MAX];
        id_put(ck, inode);
        stamp_put(ck + 16, heads[i]);
        mfs_wbuf wb;
        mfs_wbuf_init(&wb, buf, sizeof(buf));
        mfs_wput_id(&wb, dir);
        mfs_put_str16(&wb, name, strlen(name));
        tput(w, DB_CCOPY, ck, 32, buf, wb.len);
    }
    free(used);
    return w->err;
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
            uint8_t k[16];
            id_put(k, inodes.v[i]);
            MDB_val key = {16, k}, val;
            int rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
            while (rc == 0 && key.mv_size == 32 && !memcmp(key.mv_data, k, 16)) {
                idset_add(&w->touched_entries,
                          id_get((uint8_t *)key.mv_data + 16));
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
    for (w->gdone = 0; w->gdone < w->ngroups && !w->err;) {
        namekey g = w->groups[w->gdone++]; /* rename_group may grow the list */
        rename_group(w, &g, &ccset);
    }
    w->ngroups = w->gdone = 0;
    sort_dedup(&ccset);
    for (size_t i = 0; i < ccset.n && !w->err; i++)
        refresh_ccopies(w, ccset.v[i]);
    idset_free(&ccset);
    return w->err;
}

static int tx_rebuild(wtx *w, void *arg)
{
    (void)arg;
    static const int derived[] = {DB_DIRENTS, DB_VENT, DB_GROUPS,
                                  DB_LINKS,   DB_NSUB, DB_CCOPY};
    for (size_t i = 0; i < sizeof(derived) / sizeof(derived[0]); i++) {
        int rc = mdb_drop(w->txn, w->s->db[derived[i]], 0);
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
    return w->err;
}

int mfs_store_view_rebuild(mfs_store *s)
{
    return store_write(s, tx_rebuild, NULL);
}
