/*
 * invite.c - invitation tokens, join proofs, STORE/invites and
 * STORE/joining (see invite.h). Must never change the invitations file
 * without its lock, leave it half written, or accept a token or proof
 * that does not check.
 */
#include "invite.h"

#include "codec.h"
#include "mesh.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define TOKEN_VERSION 2
#define HOST_MAX 63
#define BODY_MAX (1 + 8 + 8 + 32 + 16 + 32 + 2 + HOST_MAX + 4)
#define MAX_INVITES 1024

int mfs_invite2_format(const mfs_invite *iv, char *out, size_t cap)
{
    uint8_t body[BODY_MAX];
    size_t hl = strlen(iv->host_port);
    if (hl == 0 || hl > HOST_MAX)
        return -EINVAL;
    mfs_wbuf w;
    mfs_wbuf_init(&w, body, sizeof(body));
    mfs_put_u8(&w, TOKEN_VERSION);
    mfs_put_u64(&w, iv->mesh_id);
    mfs_put_u64(&w, iv->by);
    mfs_put_bytes(&w, iv->by_pk, MFS_IDENT_PK_LEN);
    mfs_put_bytes(&w, iv->id, MFS_INVITE_ID_LEN);
    mfs_put_bytes(&w, iv->secret, 32);
    mfs_put_str16(&w, iv->host_port, hl);
    int rc = w.err ? w.err
                   : mfs_token_wrap(MFS_INVITE2_PREFIX, body, w.len,
                                    sizeof(body), out, cap);
    sodium_memzero(body, sizeof(body));
    return rc;
}

int mfs_invite2_parse(const char *token, mfs_invite *iv)
{
    uint8_t body[BODY_MAX];
    ssize_t n = mfs_token_unwrap(MFS_INVITE2_PREFIX, token, body, sizeof(body));
    if (n < 0)
        return -EINVAL;
    mfs_rbuf r;
    mfs_rbuf_init(&r, body, (size_t)n);
    mfs_invite v;
    memset(&v, 0, sizeof(v));
    size_t hl = 0;
    int ver = mfs_get_u8(&r);
    v.mesh_id = mfs_get_u64(&r);
    v.by = mfs_get_u64(&r);
    const uint8_t *pk = mfs_get_bytes(&r, MFS_IDENT_PK_LEN);
    const uint8_t *id = mfs_get_bytes(&r, MFS_INVITE_ID_LEN);
    const uint8_t *sec = mfs_get_bytes(&r, 32);
    const uint8_t *host = mfs_get_str16(&r, &hl, HOST_MAX);
    int rc = -EINVAL;
    if (!r.err && ver == TOKEN_VERSION && pk && id && sec && host && hl &&
        !memchr(host, 0, hl) && mfs_rbuf_left(&r) == 0 && v.by) {
        memcpy(v.by_pk, pk, MFS_IDENT_PK_LEN);
        memcpy(v.id, id, MFS_INVITE_ID_LEN);
        memcpy(v.secret, sec, 32);
        memcpy(v.host_port, host, hl);
        v.host_port[hl] = 0;
        *iv = v;
        rc = 0;
    }
    sodium_memzero(&v, sizeof(v));
    sodium_memzero(body, sizeof(body));
    return rc;
}

static void proof_of(const uint8_t secret[32], uint64_t mesh_id, uint64_t node,
                     const uint8_t pk[MFS_IDENT_PK_LEN], uint8_t out[32])
{
    uint8_t msg[13 + 8 + 8 + MFS_IDENT_PK_LEN];
    memcpy(msg, "meshfs join 1", 13);
    mfs_be64_put(msg + 13, mesh_id);
    mfs_be64_put(msg + 21, node);
    memcpy(msg + 29, pk, MFS_IDENT_PK_LEN);
    crypto_generichash(out, 32, msg, sizeof(msg), secret, 32);
}

void mfs_join_make(const mfs_invite *iv, uint64_t node,
                   const uint8_t pk[MFS_IDENT_PK_LEN],
                   uint8_t out[MFS_JOIN_LEN])
{
    memcpy(out, iv->id, MFS_INVITE_ID_LEN);
    memcpy(out + MFS_INVITE_ID_LEN, pk, MFS_IDENT_PK_LEN);
    proof_of(iv->secret, iv->mesh_id, node, pk,
             out + MFS_INVITE_ID_LEN + MFS_IDENT_PK_LEN);
}

int mfs_join_parse(const uint8_t *join, size_t len,
                   uint8_t id[MFS_INVITE_ID_LEN], uint8_t pk[MFS_IDENT_PK_LEN])
{
    if (len != MFS_JOIN_LEN)
        return -EBADMSG;
    memcpy(id, join, MFS_INVITE_ID_LEN);
    memcpy(pk, join + MFS_INVITE_ID_LEN, MFS_IDENT_PK_LEN);
    return 0;
}

int mfs_join_check(const uint8_t *join, size_t len, const uint8_t secret[32],
                   uint64_t mesh_id, uint64_t node)
{
    uint8_t want[32];
    if (len != MFS_JOIN_LEN)
        return -EACCES;
    proof_of(secret, mesh_id, node, join + MFS_INVITE_ID_LEN, want);
    int ok = sodium_memcmp(want, join + MFS_INVITE_ID_LEN + MFS_IDENT_PK_LEN,
                           32) == 0;
    sodium_memzero(want, sizeof(want));
    return ok ? 0 : -EACCES;
}

/* ---- moving a mesh from its mesh key ----
 * The proof is a join proof under a secret only holders of the mesh key
 * can derive, with the invitation id all zero. */

static void migrate_secret(const struct mfs_mesh_key *k, uint8_t out[32])
{
    static const char what[] = "meshfs: moving to per-node keys 1";
    crypto_generichash(out, 32, (const uint8_t *)what, sizeof(what) - 1, k->key,
                       sizeof(k->key));
}

void mfs_migrate_proof(const struct mfs_mesh_key *k, uint64_t node,
                       const uint8_t pk[MFS_IDENT_PK_LEN],
                       uint8_t out[MFS_JOIN_LEN])
{
    mfs_invite iv;
    memset(&iv, 0, sizeof(iv));
    iv.mesh_id = k->mesh_id;
    migrate_secret(k, iv.secret);
    mfs_join_make(&iv, node, pk, out);
    sodium_memzero(&iv, sizeof(iv));
}

int mfs_join_is_migrate(const uint8_t *join, size_t len)
{
    static const uint8_t zero[MFS_INVITE_ID_LEN];
    return len == MFS_JOIN_LEN && !memcmp(join, zero, sizeof(zero));
}

int mfs_migrate_check(const struct mfs_mesh_key *k, const uint8_t *join,
                      size_t len, uint64_t node)
{
    uint8_t secret[32];
    if (!mfs_join_is_migrate(join, len))
        return -EACCES;
    migrate_secret(k, secret);
    int rc = mfs_join_check(join, len, secret, k->mesh_id, node);
    sodium_memzero(secret, sizeof(secret));
    return rc;
}

/* ---- STORE/invites: one line per open invitation ----
 *   <id hex32> <secret hex64> <created> <expires> <uses>
 */

static int path_of(const char *dir, const char *name, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= cap ? -ENAMETOOLONG : 0;
}

/* Opens (creating) the lock file and takes it. Returns the fd or -errno. */
static int lock_invites(const char *dir)
{
    char p[PATH_MAX];
    int rc = path_of(dir, MFS_INVITES_FILE ".lock", p, sizeof(p));
    if (rc)
        return rc;
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    return fd;
}

static ssize_t load(const char *dir, mfs_invite_rec *v, size_t cap)
{
    char p[PATH_MAX], line[256];
    int rc = path_of(dir, MFS_INVITES_FILE, p, sizeof(p));
    if (rc)
        return rc;
    FILE *f = fopen(p, "re");
    if (!f)
        return errno == ENOENT ? 0 : -errno;
    size_t n = 0;
    while (fgets(line, sizeof(line), f)) {
        char idh[33], sech[65];
        long long created, expires;
        unsigned uses;
        mfs_invite_rec r;
        if (sscanf(line, "%32s %64s %lld %lld %u", idh, sech, &created,
                   &expires, &uses) != 5 ||
            sodium_hex2bin(r.id, sizeof(r.id), idh, 32, NULL, NULL, NULL) ||
            sodium_hex2bin(r.secret, 32, sech, 64, NULL, NULL, NULL))
            continue; /* a damaged line: that invitation is lost, no more */
        r.created = created;
        r.expires = expires;
        r.uses = uses;
        if (n < cap)
            v[n] = r;
        n++;
        sodium_memzero(&r, sizeof(r));
        sodium_memzero(sech, sizeof(sech));
    }
    sodium_memzero(line, sizeof(line));
    fclose(f);
    return (ssize_t)(n < cap ? n : cap);
}

static int save(const char *dir, const mfs_invite_rec *v, size_t n)
{
    char p[PATH_MAX], tmp[PATH_MAX + 8];
    int rc = path_of(dir, MFS_INVITES_FILE, p, sizeof(p));
    if (rc)
        return rc;
    snprintf(tmp, sizeof(tmp), "%s.tmp", p);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    FILE *f = fdopen(fd, "w");
    if (!f) {
        rc = -errno;
        close(fd);
        unlink(tmp);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        char idh[33], sech[65];
        sodium_bin2hex(idh, sizeof(idh), v[i].id, sizeof(v[i].id));
        sodium_bin2hex(sech, sizeof(sech), v[i].secret, 32);
        fprintf(f, "%s %s %lld %lld %u\n", idh, sech, (long long)v[i].created,
                (long long)v[i].expires, v[i].uses);
        sodium_memzero(sech, sizeof(sech));
    }
    if (fflush(f) != 0 || fsync(fd) != 0)
        rc = -errno;
    if (fclose(f) != 0 && !rc)
        rc = -errno;
    if (!rc && rename(tmp, p) != 0)
        rc = -errno;
    if (rc)
        unlink(tmp);
    return rc;
}

/* Runs fn on the invitations under the lock, saving them if it says so
 * (returns 1). */
typedef int (*edit_fn)(mfs_invite_rec *v, size_t *n, void *arg);

static int edit(const char *dir, edit_fn fn, void *arg)
{
    mfs_invite_rec *v = calloc(MAX_INVITES, sizeof(*v));
    if (!v)
        return -ENOMEM;
    int lk = lock_invites(dir);
    if (lk < 0) {
        free(v);
        return lk;
    }
    ssize_t n = load(dir, v, MAX_INVITES);
    int rc = (int)n;
    if (n >= 0) {
        size_t k = (size_t)n;
        rc = fn(v, &k, arg);
        if (rc > 0)
            rc = save(dir, v, k);
    }
    close(lk);
    sodium_memzero(v, MAX_INVITES * sizeof(*v));
    free(v);
    return rc;
}

static void drop_at(mfs_invite_rec *v, size_t *n, size_t i)
{
    v[i] = v[--*n];
    sodium_memzero(&v[*n], sizeof(v[*n]));
}

#define KEEP_EXPIRED_S (7 * 86400) /* a join with it is refused as expired */

/* Drops used-up ones and those expired a week ago; 1 if any. */
static int prune(mfs_invite_rec *v, size_t *n, int64_t now)
{
    int any = 0;
    for (size_t i = 0; i < *n;)
        if (v[i].expires + KEEP_EXPIRED_S <= now || v[i].uses == 0) {
            drop_at(v, n, i);
            any = 1;
        } else {
            i++;
        }
    return any;
}

static int add_fn(mfs_invite_rec *v, size_t *n, void *arg)
{
    if (*n >= MAX_INVITES)
        return -ENOSPC;
    v[(*n)++] = *(const mfs_invite_rec *)arg;
    return 1;
}

int mfs_invites_add(const char *store_dir, const mfs_invite_rec *rec)
{
    return edit(store_dir, add_fn, (void *)rec);
}

typedef struct list_arg {
    int64_t now;
    mfs_invite_rec *out;
    size_t cap, n;
} list_arg;

static int list_fn(mfs_invite_rec *v, size_t *n, void *arg)
{
    list_arg *a = arg;
    int changed = prune(v, n, a->now);
    a->n = 0;
    for (size_t i = 0; i < *n; i++)
        if (v[i].expires > a->now) { /* open */
            if (a->n < a->cap)
                a->out[a->n] = v[i];
            a->n++;
        }
    return changed;
}

ssize_t mfs_invites_list(const char *store_dir, int64_t now,
                         mfs_invite_rec *out, size_t cap)
{
    list_arg a = {now, out, cap, 0};
    int rc = edit(store_dir, list_fn, &a);
    return rc < 0 ? rc : (ssize_t)a.n;
}

typedef struct revoke_arg {
    const char *prefix;
    int n;
} revoke_arg;

static int revoke_fn(mfs_invite_rec *v, size_t *n, void *arg)
{
    revoke_arg *a = arg;
    size_t pl = strlen(a->prefix);
    for (size_t i = 0; i < *n;) {
        char idh[33];
        sodium_bin2hex(idh, sizeof(idh), v[i].id, sizeof(v[i].id));
        if (pl && pl <= 32 && !strncmp(idh, a->prefix, pl)) {
            drop_at(v, n, i);
            a->n++;
        } else {
            i++;
        }
    }
    return a->n > 0;
}

int mfs_invites_revoke(const char *store_dir, const char *prefix)
{
    revoke_arg a = {prefix, 0};
    int rc = edit(store_dir, revoke_fn, &a);
    return rc < 0 ? rc : a.n;
}

typedef struct take_arg {
    const uint8_t *id;
    int64_t now;
    mfs_invite_rec *rec;
    int found; /* 0 none, 1 taken, 2 expired */
    int give_back;
} take_arg;

static int take_fn(mfs_invite_rec *v, size_t *n, void *arg)
{
    take_arg *a = arg;
    for (size_t i = 0; i < *n; i++) {
        if (sodium_memcmp(v[i].id, a->id, MFS_INVITE_ID_LEN))
            continue;
        if (a->give_back) {
            v[i].uses++;
            a->found = 1;
            return 1;
        }
        if (v[i].expires <= a->now) {
            a->found = 2;
            return 0;
        }
        *a->rec = v[i];
        a->found = 1;
        if (--v[i].uses == 0)
            drop_at(v, n, i);
        return 1;
    }
    if (a->give_back && *n < MAX_INVITES) { /* it was the last use */
        v[*n] = *a->rec;
        v[(*n)++].uses = 1;
        a->found = 1;
        return 1;
    }
    return 0;
}

int mfs_invites_take(const char *store_dir, const uint8_t id[MFS_INVITE_ID_LEN],
                     int64_t now, mfs_invite_rec *rec)
{
    take_arg a = {id, now, rec, 0, 0};
    int rc = edit(store_dir, take_fn, &a);
    if (rc < 0)
        return rc;
    return a.found == 1 ? 0 : a.found == 2 ? -ETIMEDOUT : -ENOENT;
}

int mfs_invites_give_back(const char *store_dir, const mfs_invite_rec *rec)
{
    mfs_invite_rec r = *rec;
    take_arg a = {rec->id, 0, &r, 0, 1};
    int rc = edit(store_dir, take_fn, &a);
    sodium_memzero(&r, sizeof(r));
    return rc;
}

/* ---- STORE/joining ----
 *   <inviter hex16> <inviter pk hex64> <host:port> <join hex160>
 */

int mfs_joining_write(const char *store_dir, const mfs_joining *j)
{
    char pk[65], jh[2 * MFS_JOIN_LEN + 1], buf[512];
    sodium_bin2hex(pk, sizeof(pk), j->by_pk, MFS_IDENT_PK_LEN);
    sodium_bin2hex(jh, sizeof(jh), j->join, MFS_JOIN_LEN);
    int n = snprintf(buf, sizeof(buf), "%016" PRIx64 " %s %s %s\n", j->by, pk,
                     j->host_port, jh);
    if (n < 0 || (size_t)n >= sizeof(buf))
        return -EINVAL;
    int rc = mfs_mesh_secret_write(store_dir, MFS_JOINING_FILE,
                                   (const uint8_t *)buf, (size_t)n);
    sodium_memzero(buf, sizeof(buf));
    sodium_memzero(jh, sizeof(jh));
    return rc;
}

int mfs_joining_read(const char *store_dir, mfs_joining *j)
{
    char buf[512], pk[65], hp[64], jh[2 * MFS_JOIN_LEN + 1];
    ssize_t n = mfs_mesh_secret_read(store_dir, MFS_JOINING_FILE,
                                     (uint8_t *)buf, sizeof(buf) - 1);
    if (n < 0)
        return (int)n;
    buf[n] = 0;
    unsigned long long by;
    int rc = -EBADMSG;
    if (sscanf(buf, "%llx %64s %63s %160s", &by, pk, hp, jh) == 4 && by &&
        !sodium_hex2bin(j->by_pk, MFS_IDENT_PK_LEN, pk, 64, NULL, NULL, NULL) &&
        !sodium_hex2bin(j->join, MFS_JOIN_LEN, jh, 2 * MFS_JOIN_LEN, NULL, NULL,
                        NULL)) {
        j->by = by;
        memset(j->host_port, 0, sizeof(j->host_port));
        memcpy(j->host_port, hp, strlen(hp) + 1);
        rc = 0;
    }
    sodium_memzero(buf, sizeof(buf));
    sodium_memzero(jh, sizeof(jh));
    return rc;
}

int mfs_joining_remove(const char *store_dir)
{
    char p[PATH_MAX];
    int rc = path_of(store_dir, MFS_JOINING_FILE, p, sizeof(p));
    if (rc)
        return rc;
    return unlink(p) == 0 || errno == ENOENT ? 0 : -errno;
}
