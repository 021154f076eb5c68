/*
 * ident.c - the node's identity in a mesh of per-node keys (docs/WIRE.md
 * "Identities"): its key pair (STORE/node.key), the member keys its
 * transport needs (from the store's replicated registry: key.<node>
 * records, removed.<node>), the joins it admits through invitations
 * (STORE/invites) and the registry's copy of the invitations it made
 * (invited.<id>, which every member lists), and its own join
 * (STORE/joining).
 *
 * The admit callback runs on the transport's thread under the core's
 * lock, so it never writes the store: it checks the invitation and the
 * proof, takes a use, and leaves the member record to the engine's thread
 * (mfs_node_ident_tick). It must never admit a node id that the registry
 * already binds to another key, or that was removed.
 */
#include "node.h"

#include "codec.h"
#include "log.h"
#include "mesh.h"

#include <errno.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SYNC_EVERY_US 500000u /* the registry, looked at again */
/* moving a mesh: how long the registry must have held every member's key
 * before this node stops speaking the mesh key (its own record has that
 * long to reach the others) */
#define SETTLE_US 2000000u

int mfs_node_ident_found(const char *store_dir, mfs_store *s)
{
    struct mfs_mesh_key mk;
    mfs_ident id;
    int r = mfs_mesh_key_load(store_dir, &mk);
    if (r < 0)
        return r;
    uint64_t mesh_id = mk.mesh_id;
    sodium_memzero(&mk, sizeof(mk));
    if ((r = mfs_ident_create(store_dir, mfs_store_node_id(s))) < 0 ||
        (r = mfs_ident_load(store_dir, &id)) < 0)
        return r;
    mfs_member_rec rec = {.mesh_id = mesh_id,
                          .node = mfs_store_node_id(s),
                          .by = mfs_store_node_id(s)};
    memcpy(rec.pk, id.pk, MFS_IDENT_PK_LEN);
    uint8_t buf[MFS_MEMBER_REC_LEN];
    mfs_member_rec_make(&rec, &id, buf);
    mfs_ident_wipe(&id);
    r = mfs_store_member_key_put(s, rec.node, buf, sizeof(buf));
    return r == -EALREADY ? 0 : r;
}

int mfs_node_ident_load(mfs_node *m, char *err, size_t errcap)
{
    mfs_node_ident *d = &m->id;
    int r = mfs_ident_load(m->store_dir, &d->key);
    if (r == -ENOENT)
        return 0; /* the mesh key's mesh */
    if (r < 0) {
        snprintf(err, errcap, "cannot use the node key %s/%s: %s", m->store_dir,
                 MFS_IDENT_FILE,
                 r == -EPERM     ? "readable by others (chmod 600 it)"
                 : r == -EBADMSG ? "not a node key"
                                 : strerror(-r));
        return r;
    }
    if (d->key.node != mfs_store_node_id(m->store)) {
        snprintf(err, errcap,
                 "%s/%s is the key of node %016" PRIx64 ", not of this "
                 "store's node %016" PRIx64,
                 m->store_dir, MFS_IDENT_FILE, d->key.node,
                 mfs_store_node_id(m->store));
        mfs_ident_wipe(&d->key);
        return -EINVAL;
    }
    struct mfs_mesh_key mk;
    if ((r = mfs_mesh_key_load(m->store_dir, &mk)) < 0) {
        snprintf(err, errcap, "cannot read the mesh id in %s/%s: %s",
                 m->store_dir, MFS_MESH_KEY_FILE, strerror(-r));
        return r;
    }
    d->mesh_id = mk.mesh_id;
    char mp[PATH_MAX + 16];
    snprintf(mp, sizeof mp, "%s/%s", m->store_dir, MFS_MIGRATING_FILE);
    if (access(mp, F_OK) == 0) {
        d->migrating = 1;
        d->mesh = mk;
        mfs_migrate_proof(&mk, d->key.node, d->key.pk, d->proof);
    }
    sodium_memzero(&mk, sizeof(mk));
    r = mfs_joining_read(m->store_dir, &d->join);
    if (r == 0)
        d->joining = 1;
    else if (r != -ENOENT) {
        snprintf(err, errcap, "cannot read %s/%s: %s", m->store_dir,
                 MFS_JOINING_FILE, strerror(-r));
        return r;
    }
    pthread_mutex_init(&d->mu, NULL);
    __atomic_store_n(&d->on, 1, __ATOMIC_RELEASE);
    char fpr[MFS_IDENT_FPR_LEN];
    mfs_ident_fingerprint(d->key.pk, fpr);
    mfs_log(LOG_INFO, "sync: node key %s%s", fpr,
            d->joining     ? " (joining the mesh)"
            : d->migrating ? " (moving the mesh from its mesh key)"
                           : "");
    return 0;
}

void mfs_node_ident_free(mfs_node *m)
{
    if (!m->id.on)
        return;
    mfs_ident_wipe(&m->id.key);
    sodium_memzero(&m->id.join, sizeof(m->id.join));
    sodium_memzero(&m->id.mesh, sizeof(m->id.mesh));
    pthread_mutex_destroy(&m->id.mu);
    m->id.on = 0;
}

static int removed(const uint64_t *rm, ssize_t n, uint64_t id)
{
    for (ssize_t i = 0; i < n && i < 256; i++)
        if (rm[i] == id)
            return 1;
    return 0;
}

int mfs_node_ident_admit(void *arg, uint64_t id, const uint8_t pub[32],
                         const uint8_t *join, size_t len)
{
    mfs_node *m = arg;
    mfs_node_ident *d = &m->id;
    uint8_t iid[MFS_INVITE_ID_LEN], pk[MFS_IDENT_PK_LEN], x[32];
    char fpr[MFS_IDENT_FPR_LEN] = "?";
    const char *why = NULL;
    uint64_t rm[256];
    mfs_invite_rec rec;
    int took = 0;
    if (!d->on || mfs_join_parse(join, len, iid, pk) ||
        mfs_ident_dh_pub(pk, x) || sodium_memcmp(x, pub, 32)) {
        why = "its proof names another key";
        goto refuse;
    }
    mfs_ident_fingerprint(pk, fpr);
    ssize_t nrm = mfs_store_members_removed(m->store, rm, 256);
    if (nrm > 0 && removed(rm, nrm, id)) {
        why = "it was removed from the mesh";
        goto refuse;
    }
    if (mfs_join_is_migrate(join, len)) { /* a node moving with us */
        pthread_mutex_lock(&d->mu);
        int mig = d->migrating;
        int ok = mig && mfs_migrate_check(&d->mesh, join, len, id) == 0;
        pthread_mutex_unlock(&d->mu);
        if (!ok) {
            why = mig ? "its proof of the mesh key does not check"
                      : "it proves the mesh key, which this node no longer "
                        "holds (the mesh moved to per-node keys without it: "
                        "join again with a meshfs invite token)";
            goto refuse;
        }
        goto admitted;
    }
    int r = mfs_invites_take(m->store_dir, iid, (int64_t)time(NULL), &rec);
    if (r) {
        why = r == -ETIMEDOUT ? "its invitation expired"
              : r == -ENOENT  ? "its invitation is used up, revoked or unknown"
                              : "the invitations file cannot be read";
        goto refuse;
    }
    took = 1;
    if (mfs_join_check(join, len, rec.secret, d->mesh_id, id)) {
        why = "its proof does not check";
        goto refuse;
    }
admitted:
    pthread_mutex_lock(&d->mu);
    size_t k = d->nadmitted;
    if (k < sizeof(d->admitted) / sizeof(d->admitted[0])) {
        d->admitted[k].id = id;
        memcpy(d->admitted[k].pk, pk, MFS_IDENT_PK_LEN);
        d->nadmitted++;
        d->admits++;
    }
    pthread_mutex_unlock(&d->mu);
    if (k >= sizeof(d->admitted) / sizeof(d->admitted[0])) {
        why = "too many joins at once";
        goto refuse; /* the use goes back */
    }
    sodium_memzero(&rec, sizeof(rec));
    mfs_log(LOG_NOTICE, "sync: node %016" PRIx64 " (key %s) joins the mesh", id,
            fpr);
    m->net.wake(m->net.ctx);
    return 0;
refuse:
    if (took)
        mfs_invites_give_back(m->store_dir, &rec);
    sodium_memzero(&rec, sizeof(rec));
    pthread_mutex_lock(&d->mu);
    d->refusals++;
    uint64_t now = (uint64_t)time(NULL) * 1000000u;
    size_t t = 0, old = 0;
    while (t < 8 && d->told[t].id != id)
        t++;
    int say = t == 8 || now - d->told[t].t_us >= 60000000u;
    if (t == 8) { /* the oldest entry makes room */
        for (size_t i = 1; i < 8; i++)
            if (d->told[i].t_us < d->told[old].t_us)
                old = i;
        t = old;
    }
    if (say)
        d->told[t].id = id, d->told[t].t_us = now;
    pthread_mutex_unlock(&d->mu);
    if (say) /* it retries every second: once a minute is enough */
        mfs_log(LOG_WARNING,
                "sync: refused node %016" PRIx64 " (key %s) a join: %s", id,
                fpr, why);
    return -EACCES;
}

/* Writes the member records of the joins admitted since. */
static void write_admitted(mfs_node *m)
{
    mfs_node_ident *d = &m->id;
    pthread_mutex_lock(&d->mu);
    size_t n = d->nadmitted;
    uint64_t ids[16];
    uint8_t pks[16][MFS_IDENT_PK_LEN];
    for (size_t i = 0; i < n; i++) {
        ids[i] = d->admitted[i].id;
        memcpy(pks[i], d->admitted[i].pk, MFS_IDENT_PK_LEN);
    }
    d->nadmitted = 0;
    pthread_mutex_unlock(&d->mu);
    for (size_t i = 0; i < n; i++) {
        mfs_member_rec rec = {.mesh_id = d->mesh_id,
                              .node = ids[i],
                              .by = mfs_store_node_id(m->store)};
        memcpy(rec.pk, pks[i], MFS_IDENT_PK_LEN);
        uint8_t buf[MFS_MEMBER_REC_LEN];
        mfs_member_rec_make(&rec, &d->key, buf);
        int r = mfs_store_member_key_put(m->store, ids[i], buf, sizeof(buf));
        if (r < 0 && r != -EALREADY)
            mfs_log(LOG_ERR,
                    "sync: cannot record node %016" PRIx64 " as a member: "
                    "%s; it keeps its session with this node, but the "
                    "others will not know it",
                    ids[i], strerror(-r));
    }
}

typedef struct keys_walk {
    mfs_node *m;
    const uint64_t *rm;
    ssize_t nrm;
    int self_found;
    /* the records, for the signers' keys */
    uint64_t ids[256];
    mfs_member_rec recs[256];
    uint8_t raw[256][MFS_MEMBER_REC_LEN];
    size_t n;
} keys_walk;

static int keys_one(void *arg, uint64_t node, const uint8_t *rec, size_t len)
{
    keys_walk *w = arg;
    mfs_member_rec r;
    if (w->n >= 256 || mfs_member_rec_parse(rec, len, &r) || r.node != node ||
        r.mesh_id != w->m->id.mesh_id)
        return 0;
    w->ids[w->n] = node;
    w->recs[w->n] = r;
    memcpy(w->raw[w->n], rec, MFS_MEMBER_REC_LEN);
    w->n++;
    return 0;
}

/* The signer's key of record i: its own (founding), or its admitter's. */
static const uint8_t *signer_of(const keys_walk *w, size_t i)
{
    if (w->recs[i].by == w->recs[i].node)
        return w->recs[i].pk;
    for (size_t j = 0; j < w->n; j++)
        if (w->ids[j] == w->recs[i].by)
            return w->recs[j].pk;
    return NULL;
}

static void push_keys(mfs_node *m)
{
    mfs_node_ident *d = &m->id;
    keys_walk *w = calloc(1, sizeof(*w));
    uint64_t *rm = calloc(256, sizeof(*rm));
    if (!w || !rm)
        goto out;
    w->m = m;
    w->rm = rm;
    w->nrm = mfs_store_members_removed(m->store, rm, 256);
    if (mfs_store_member_keys(m->store, keys_one, w) < 0)
        goto out;
    /* the registry as it was at the last look: nothing to tell the
     * transport (each call takes its lock and wakes its loop) */
    uint8_t h[32];
    crypto_generichash_state g;
    crypto_generichash_init(&g, NULL, 0, sizeof(h));
    crypto_generichash_update(&g, w->raw[0], w->n * MFS_MEMBER_REC_LEN);
    if (w->nrm > 0)
        crypto_generichash_update(&g, (const uint8_t *)rm,
                                  (size_t)(w->nrm < 256 ? w->nrm : 256) *
                                      sizeof(*rm));
    crypto_generichash_final(&g, h, sizeof(h));
    int same = d->pushed && !memcmp(h, d->pushed_hash, sizeof(h));
    memcpy(d->pushed_hash, h, sizeof(h));
    d->pushed = 1;
    uint64_t self = mfs_store_node_id(m->store);
    d->nkeyed = 0;
    for (size_t i = 0; i < w->n; i++) {
        const uint8_t *signer = signer_of(w, i);
        uint8_t x[32];
        if (!signer ||
            mfs_member_rec_verify(w->raw[i], MFS_MEMBER_REC_LEN, signer) ||
            mfs_ident_dh_pub(w->recs[i].pk, x))
            continue; /* not (yet) vouched for */
        if (w->ids[i] == self) {
            w->self_found = !memcmp(w->recs[i].pk, d->key.pk, MFS_IDENT_PK_LEN);
            continue;
        }
        int gone = w->nrm > 0 && removed(rm, w->nrm, w->ids[i]);
        if (!gone && d->nkeyed < 256)
            d->keyed_ids[d->nkeyed++] = w->ids[i];
        if (same)
            continue;
        m->net.member_key(m->net.ctx, w->ids[i], gone ? NULL : x);
    }
    for (ssize_t i = 0; !same && i < w->nrm && i < 256; i++)
        if (rm[i] != self)
            m->net.member_key(m->net.ctx, rm[i], NULL);
    if (d->joining && w->self_found) {
        int r = mfs_joining_remove(m->store_dir);
        if (r < 0)
            mfs_log(LOG_WARNING,
                    "sync: this node joined, but cannot remove %s/%s: %s; "
                    "the next mount tries again",
                    m->store_dir, MFS_JOINING_FILE, strerror(-r));
        if (m->net.join_done)
            m->net.join_done(m->net.ctx);
        d->joining = 0;
        sodium_memzero(&d->join, sizeof(d->join));
        mfs_log(LOG_NOTICE, "sync: this node is a member of the mesh");
    }
    d->self_keyed = w->self_found;
out:
    free(w);
    free(rm);
}

static int listed(const uint64_t *v, size_t n, uint64_t id)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == id)
            return 1;
    return 0;
}

/* The mesh key is forgotten: STORE/mesh.key gets a random key, and
 * STORE/migrating goes. */
static void forget_mesh_key(mfs_node *m)
{
    mfs_node_ident *d = &m->id;
    int r = mfs_mesh_key_forget(m->store_dir);
    char mp[PATH_MAX + 16];
    snprintf(mp, sizeof mp, "%s/%s", m->store_dir, MFS_MIGRATING_FILE);
    if (!r && unlink(mp) != 0 && errno != ENOENT)
        r = -errno;
    if (r) {
        uint64_t now = (uint64_t)time(NULL);
        if (now - d->forget_warned >= 60) { /* tried every 500 ms */
            d->forget_warned = now;
            mfs_log(LOG_WARNING,
                    "sync: cannot forget the mesh key in %s: %s; it is "
                    "tried again every half second (until then an old mfs1 "
                    "token still admits; free space or fix the store "
                    "directory's permissions)",
                    m->store_dir, strerror(-r));
        }
        return;
    }
    if (m->net.join_done)
        m->net.join_done(m->net.ctx);
    pthread_mutex_lock(&d->mu);
    d->migrating = 0;
    sodium_memzero(&d->mesh, sizeof(d->mesh));
    sodium_memzero(d->proof, sizeof(d->proof));
    pthread_mutex_unlock(&d->mu);
    mfs_log(LOG_NOTICE, "sync: every member has moved to per-node keys: "
                        "this node forgot the mesh key (old mfs1 tokens open "
                        "nothing here now)");
}

/* One look at a move from the mesh key (docs/WIRE.md "Moving a mesh"):
 * once the registry has held every member's key for SETTLE_US, per-node
 * keys go on; once every member has had a session with this node, the
 * mesh key is forgotten. */
static void migrate_step(mfs_node *m, uint64_t now)
{
    mfs_node_ident *d = &m->id;
    if (!m->net_up || !m->net.is_ident || !m->net.go_ident)
        return;
    uint64_t self = mfs_store_node_id(m->store), rm[256];
    ssize_t nrm = mfs_store_members_removed(m->store, rm, 256);
    mfs_vv vv = {0};
    if (mfs_store_vv(m->store, &vv) < 0)
        return;
    mfs_peer_stat *ps = calloc(256, sizeof(*ps));
    size_t np = ps ? m->net.peers(m->net.ctx, ps, 256) : 0;
    for (size_t i = 0; i < np && i < 256; i++)
        if (ps[i].id && ps[i].session_age_us &&
            !listed(d->met, d->nmet, ps[i].id) && d->nmet < 256)
            d->met[d->nmet++] = ps[i].id;
    free(ps);
    uint32_t members = 0, keyed = 0, met = 0;
    for (size_t i = 0; i < vv.n; i++) {
        uint64_t id = vv.e[i].node;
        if (id == self || !vv.e[i].seq || (nrm > 0 && removed(rm, nrm, id)))
            continue;
        members++;
        keyed += listed(d->keyed_ids, d->nkeyed, id);
        met += listed(d->met, d->nmet, id);
    }
    mfs_vv_free(&vv);
    int moved = m->net.is_ident(m->net.ctx);
    int complete = keyed == members && d->self_keyed;
    if (!complete)
        d->complete_us = 0;
    else if (!d->complete_us)
        d->complete_us = now;
    if (!moved && complete && now - d->complete_us >= SETTLE_US) {
        mfs_log(LOG_NOTICE,
                "sync: every member's key is known (%u): per-node keys from "
                "now on",
                members);
        m->net.go_ident(m->net.ctx);
        moved = 1;
    }
    pthread_mutex_lock(&d->mu);
    d->mig.moved = moved;
    d->mig.members = members;
    d->mig.keyed = keyed;
    d->mig.met = met;
    pthread_mutex_unlock(&d->mu);
    if (moved && met == members && complete)
        forget_mesh_key(m);
}

int mfs_node_migration(mfs_node *m, int *moved, uint32_t *members,
                       uint32_t *keyed, uint32_t *met)
{
    mfs_node_ident *d = &m->id;
    if (!__atomic_load_n(&d->on, __ATOMIC_ACQUIRE))
        return 0;
    pthread_mutex_lock(&d->mu);
    int on = d->migrating;
    *moved = d->mig.moved;
    *members = d->mig.members;
    *keyed = d->mig.keyed;
    *met = d->mig.met;
    pthread_mutex_unlock(&d->mu);
    return on;
}

int mfs_node_migrate_store(const char *store_dir, mfs_store *s)
{
    char mp[PATH_MAX + 16];
    snprintf(mp, sizeof mp, "%s/%s", store_dir, MFS_MIGRATING_FILE);
    /* first the mark, then the key: a key without the mark would speak
     * only per-node keys at the next mount, to members that cannot yet */
    static const uint8_t mark[] = "moving from the mesh key\n";
    int r = mfs_mesh_secret_write(store_dir, MFS_MIGRATING_FILE, mark,
                                  sizeof(mark) - 1);
    if (r < 0 && r != -EEXIST)
        return r;
    if ((r = mfs_node_ident_found(store_dir, s)) < 0)
        unlink(mp);
    return r;
}

int mfs_node_migrate(mfs_node *m, char *err, size_t errcap)
{
    mfs_node_ident *d = &m->id;
    if (__atomic_load_n(&d->on, __ATOMIC_ACQUIRE)) {
        snprintf(err, errcap, "this node has its own key already%s",
                 d->migrating ? " (the move is under way: see meshfs stat)"
                              : "");
        return -EALREADY;
    }
    if (!m->net_up || !m->net.hold_ident) {
        snprintf(err, errcap, "this mount's transport cannot move");
        return -ENOTSUP;
    }
    int r = mfs_node_migrate_store(m->store_dir, m->store);
    if (r < 0) {
        snprintf(err, errcap, "cannot make this node's key in %s: %s",
                 m->store_dir, strerror(-r));
        return r;
    }
    if ((r = mfs_node_ident_load(m, err, errcap)) < 0)
        return r;
    r = m->net.hold_ident(m->net.ctx, &d->key.dh, d->proof, MFS_JOIN_LEN);
    if (r < 0) {
        snprintf(err, errcap, "the transport refused the key: %s",
                 strerror(-r));
        return r;
    }
    m->net.wake(m->net.ctx);
    return 0;
}

/* The invitation's register id: its id's first 8 bytes. */
static uint64_t invited_id(const mfs_invite_rec *r)
{
    return mfs_be64_get(r->id);
}

/* The open invitations of STORE/invites (*out: calloc'd, the caller
 * wipes and frees it; they hold secrets), or -errno. */
static ssize_t open_invites(mfs_node *m, int64_t now, mfs_invite_rec **out)
{
    size_t cap = 64;
    for (;;) {
        mfs_invite_rec *v = calloc(cap, sizeof(*v));
        if (!v)
            return -ENOMEM;
        ssize_t n = mfs_invites_list(m->store_dir, now, v, cap);
        if (n >= 0 && (size_t)n <= cap) {
            *out = v;
            return n;
        }
        sodium_memzero(v, cap * sizeof(*v));
        free(v);
        if (n < 0)
            return n;
        cap = (size_t)n; /* more were added meanwhile: the loop asks again */
    }
}

/* Every register of the registry's invitations, or -errno. */
static ssize_t all_invited(mfs_node *m, mfs_invited **out)
{
    size_t cap = 64;
    for (;;) {
        mfs_invited *v = calloc(cap, sizeof(*v));
        if (!v)
            return -ENOMEM;
        ssize_t n = mfs_store_invited_list(m->store, v, cap);
        if (n >= 0 && (size_t)n <= cap) {
            *out = v;
            return n;
        }
        free(v);
        if (n < 0)
            return n;
        cap = (size_t)n;
    }
}

static int same_invited(const mfs_invited *a, const mfs_invited *b)
{
    return a->id == b->id && a->by == b->by && a->created == b->created &&
           a->expires == b->expires && a->uses == b->uses;
}

/* Keeps the registry's invitation registers of this node in step with its
 * STORE/invites, which `meshfs invite` changes with no daemon's help and
 * the admit callback takes uses from: an open invitation the registry
 * lacks or shows with other uses or times is written, the register of
 * one no longer open (revoked, used up, expired) is cleared. Only this
 * node's registers: each node writes its own invitations. */
static void sync_invites(mfs_node *m)
{
    mfs_node_ident *d = &m->id;
    int64_t now = (int64_t)time(NULL);
    uint64_t self = mfs_store_node_id(m->store);
    mfs_invite_rec *v = NULL;
    mfs_invited *reg = NULL;
    ssize_t nv = open_invites(m, now, &v), nreg = -1;
    const char *what = "read";
    int r = (int)nv;
    if (nv >= 0) {
        nreg = all_invited(m, &reg);
        r = (int)nreg;
    }
    for (ssize_t i = 0; nreg >= 0 && i < nv; i++) {
        mfs_invited iv = {.id = invited_id(&v[i]),
                          .by = self,
                          .created = v[i].created,
                          .expires = v[i].expires,
                          .uses = v[i].uses};
        if (!iv.id)
            continue; /* 2^-64: it goes unlisted, and works */
        /* shown as it is already: no write transaction */
        ssize_t j = 0;
        while (j < nreg && !same_invited(&reg[j], &iv))
            j++;
        if (j < nreg)
            continue;
        int rc = mfs_store_invited_put(m->store, &iv);
        if (rc < 0 && rc != -EALREADY)
            r = rc, what = "publish";
    }
    for (ssize_t i = 0; nreg >= 0 && i < nreg; i++) {
        if (reg[i].by != self)
            continue;
        ssize_t j = 0;
        while (j < nv && invited_id(&v[j]) != reg[i].id)
            j++;
        if (j < nv)
            continue;
        int rc = mfs_store_invited_clear(m->store, reg[i].id);
        if (rc < 0 && rc != -EALREADY)
            r = rc, what = "clear";
    }
    if (v)
        sodium_memzero(v, (size_t)(nv > 0 ? nv : 0) * sizeof(*v));
    free(v);
    free(reg);
    if (r >= 0 || (uint64_t)now - d->invites_warned < 60)
        return; /* tried every 500 ms: once a minute is enough */
    d->invites_warned = (uint64_t)now;
    mfs_log(LOG_WARNING,
            "sync: cannot %s this node's invitations (%s/%s and the member "
            "registry): %s; the other members' `meshfs members` may list "
            "them wrong until it works (tried every half second)",
            what, m->store_dir, MFS_INVITES_FILE, strerror(-r));
}

void mfs_node_ident_tick(mfs_node *m, uint64_t now)
{
    if (!__atomic_load_n(&m->id.on, __ATOMIC_ACQUIRE) || !m->net.member_key)
        return;
    write_admitted(m);
    if (now - m->id.sync_us < SYNC_EVERY_US && m->id.sync_us)
        return;
    m->id.sync_us = now;
    push_keys(m);
    sync_invites(m);
    if (m->id.migrating)
        migrate_step(m, now);
}

void mfs_node_ident_removed(mfs_node *m, uint64_t node)
{
    if (m->id.on && m->net_up && m->net.member_key)
        m->net.member_key(m->net.ctx, node, NULL);
}

uint64_t mfs_node_ident_next(const mfs_node *m)
{
    return m->id.on ? m->id.sync_us + SYNC_EVERY_US : UINT64_MAX;
}

void mfs_node_ident_told_removed(void *arg, uint64_t by)
{
    static const uint8_t zero = 0; /* the engine's own "you were removed" */
    mfs_node_on_msg(arg, by, MFS_MT_REFUSED, &zero, 1);
}
