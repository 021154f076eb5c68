/*
 * pack.c - chunk bytes in append-only pack files (STORE/packs/), so that
 * collection gives disk space back.
 *
 * Why: LMDB reuses the pages a commit frees but never shrinks its file, so
 * a store that once held 400 MB of versions kept a 400 MB data.mdb after
 * they were collected. Chunks larger than PACK_INLINE now live in packs of
 * up to PACK_MAX bytes; DB_CHUNKS maps the hash to a 17-byte reference
 * (pack id, offset, length, a 0 tag byte) instead of the bytes. A chunk
 * stored inline never ends in a zero byte (trailing zeros are trimmed
 * before hashing), so the tag tells the two apart and stores written
 * before packs read as they are. DB_PACKS keeps, per pack, the size
 * committed and the live bytes (the sum of the references into it).
 *
 * What must hold:
 *  - Bytes are appended, never overwritten. Every pack written since the
 *    last commit is fdatasync'd before the main environment commits a
 *    reference to it under group commit (packs_sync in gc_commit_locked;
 *    without group commit, whose commits promise nothing until synced,
 *    before every mdb_env_sync), and a new pack's directory entry is
 *    synced before its first use; so a power cut leaves every durable
 *    reference pointing at durable bytes. Bytes beyond the committed size are garbage from a lost
 *    commit: the store truncates them away when it reopens.
 *  - A pack is deleted only once no committed reference points into it
 *    (its DB_PACKS record is gone from the committed state) and under
 *    maplock held for writing, so no read txn that could still hold an
 *    older reference is open (every read of chunk bytes happens inside a
 *    txn, which holds maplock for reading). A pack file without a record
 *    (a crash before its first commit or before its deletion) is removed
 *    when the store next opens for writing.
 *  - Collection frees a chunk by dropping its reference (live bytes go
 *    down); a pack whose live bytes reach 0 is deleted, and one that is
 *    mostly dead is evacuated: the sweep copies its live chunks to the
 *    active pack, a few per write transaction, and it then empties.
 * Must never: write into a pack other than the active one, or let a
 * reference outlive the bytes it names.
 */
#include "kv.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define PACK_FDS 32       /* pack files kept open for reads */
#define REF_LEN PACK_REF_LEN
#define PACK_SLACK ((uint64_t)2 << 20) /* dead bytes always tolerated */
/* The active pack ends at a quarter of the live chunk bytes (as of the
 * last tidy), between PACK_MIN and PACK_MAX: a pack evacuated later
 * copies at most that much, so the pack files never hold about twice the
 * live bytes while one is copied (a store of 18 MB of chunks in one
 * 32 MiB pack reached 40 MB of pack files during an evacuation:
 * tests/system/mesh_soak.sh under load). */
#define PACK_MIN ((uint64_t)4 << 20)

typedef struct pack_fd {
    uint32_t id; /* 0: free slot */
    int fd;
    int refs;
    uint64_t used; /* for eviction: least recently used goes */
} pack_fd;

struct packs {
    pthread_mutex_t lock;
    int dirfd;
    bool writable;
    uint32_t active; /* pack appended to; 0 until the first append */
    int afd;         /* its descriptor (read-write), -1 while none */
    uint64_t end;    /* where the next append goes */
    uint64_t limit;  /* the active pack ends this big (PACK_MIN..PACK_MAX) */
    uint32_t next;   /* id the next new pack gets */
    int *unsynced;   /* descriptors written since the last sync */
    size_t nunsynced, capunsynced;
    uint64_t unsynced_bytes; /* appended since the last sync */
    uint32_t *evac; /* packs being evacuated */
    size_t nevac, capevac;
    uint32_t *doomed; /* packs with no record left, to delete */
    size_t ndoomed, capdoomed;
    pack_fd fds[PACK_FDS];
    uint64_t tick;
};

typedef struct pack_rec {
    uint64_t size; /* bytes committed (appended) */
    uint64_t live; /* bytes still referenced */
} pack_rec;

static void rec_put(uint8_t b[PACKS_VAL_LEN], const pack_rec *r)
{
    mfs_be64_put(b + PACKS_VAL_SIZE, r->size);
    mfs_be64_put(b + PACKS_VAL_LIVE, r->live);
}

static int rec_get(mfs_store *s, MDB_txn *txn, uint32_t id, pack_rec *r)
{
    uint8_t k[PACKS_KEY_LEN];
    MDB_val v;
    mfs_be32_put(k, id);
    int rc = tget(s, txn, DB_PACKS, k, PACKS_KEY_LEN, &v);
    if (rc)
        return rc;
    if (v.mv_size != PACKS_VAL_LEN)
        return -EIO;
    r->size = mfs_be64_get((uint8_t *)v.mv_data + PACKS_VAL_SIZE);
    r->live = mfs_be64_get((uint8_t *)v.mv_data + PACKS_VAL_LIVE);
    return 0;
}

static void pack_name(char out[24], uint32_t id)
{
    snprintf(out, 24, "%08x.pack", id);
}

/* ---- references ---- */

bool chunk_is_ref(const MDB_val *v)
{
    return v->mv_size == REF_LEN &&
           ((const uint8_t *)v->mv_data)[PACK_REF_TAG] == 0;
}

static void ref_get(const MDB_val *v, uint32_t *id, uint64_t *off,
                    uint32_t *len)
{
    const uint8_t *p = v->mv_data;
    *id = mfs_be32_get(p + PACK_REF_ID);
    *off = mfs_be64_get(p + PACK_REF_OFF);
    *len = mfs_be32_get(p + PACK_REF_SIZE);
}

static void ref_put(uint8_t *p, uint32_t id, uint64_t off, uint32_t len)
{
    mfs_be32_put(p + PACK_REF_ID, id);
    mfs_be64_put(p + PACK_REF_OFF, off);
    mfs_be32_put(p + PACK_REF_SIZE, len);
    p[PACK_REF_TAG] = 0;
}

size_t chunk_val_len(const MDB_val *v)
{
    if (!chunk_is_ref(v))
        return v->mv_size;
    uint32_t id, len;
    uint64_t off;
    ref_get(v, &id, &off, &len);
    return len;
}

/* ---- descriptors ---- */

/* A descriptor for reading pack id (held until fd_put), or -errno. */
static int fd_get(struct packs *p, uint32_t id, int *slot)
{
    pthread_mutex_lock(&p->lock);
    int victim = -1;
    for (int i = 0; i < PACK_FDS; i++) {
        if (p->fds[i].id == id) {
            p->fds[i].refs++;
            p->fds[i].used = ++p->tick;
            *slot = i;
            pthread_mutex_unlock(&p->lock);
            return p->fds[i].fd;
        }
        if (p->fds[i].refs == 0 &&
            (victim < 0 || p->fds[i].used < p->fds[victim].used))
            victim = i;
    }
    char name[24];
    pack_name(name, id);
    int fd = openat(p->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = -errno;
        pthread_mutex_unlock(&p->lock);
        return e;
    }
    if (victim < 0) { /* every slot busy: this read has its own */
        *slot = -1;
        pthread_mutex_unlock(&p->lock);
        return fd;
    }
    if (p->fds[victim].id)
        close(p->fds[victim].fd);
    p->fds[victim] = (pack_fd){id, fd, 1, ++p->tick};
    *slot = victim;
    pthread_mutex_unlock(&p->lock);
    return fd;
}

static void fd_put(struct packs *p, int fd, int slot)
{
    if (slot < 0) {
        close(fd);
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->fds[slot].refs--;
    pthread_mutex_unlock(&p->lock);
}

static void fd_forget(struct packs *p, uint32_t id)
{
    for (int i = 0; i < PACK_FDS; i++)
        if (p->fds[i].id == id && p->fds[i].refs == 0) {
            close(p->fds[i].fd);
            p->fds[i] = (pack_fd){0};
        }
}

ssize_t chunk_val_copy(mfs_store *s, const MDB_val *v, void *out)
{
    return chunk_val_read(s, v, 0, out, MFS_CHUNK_SIZE);
}

ssize_t chunk_val_read(mfs_store *s, const MDB_val *v, size_t skip, void *out,
                       size_t max)
{
    if (!chunk_is_ref(v)) {
        size_t n = v->mv_size > skip ? v->mv_size - skip : 0;
        n = n < max ? n : max;
        memcpy(out, (const uint8_t *)v->mv_data + skip, n);
        return (ssize_t)n;
    }
    uint32_t id, len;
    uint64_t off;
    ref_get(v, &id, &off, &len);
    if (len > MFS_CHUNK_SIZE || !s->packs)
        return -EIO;
    off += skip;
    len = len > skip ? (uint32_t)(len - skip) : 0;
    len = len < max ? len : (uint32_t)max;
    int slot = -1;
    int fd = fd_get(s->packs, id, &slot);
    if (fd < 0) {
        mfs_log(LOG_ERR,
                "store %s: cannot open packs/%08x.pack: %s; the read of a "
                "chunk in it fails with EIO",
                s->dir, id, strerror(-fd));
        return -EIO;
    }
    size_t done = 0;
    int e = 0;
    while (done < len) {
        ssize_t n = pread(fd, (uint8_t *)out + done, len - done,
                          (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            e = n < 0 ? errno : 0;
            break;
        }
        done += (size_t)n;
    }
    fd_put(s->packs, fd, slot);
    if (done < len) {
        mfs_log(LOG_ERR,
                "store %s: cannot read packs/%08x.pack at offset %llu: %s; "
                "the read of that chunk fails with EIO (check the disk: "
                "dmesg)",
                s->dir, id, (unsigned long long)off,
                e ? strerror(e) : "short read");
        return -EIO;
    }
    return (ssize_t)len;
}

/* ---- appends ---- */

static int remember_unsynced(struct packs *p, int fd)
{
    for (size_t i = 0; i < p->nunsynced; i++)
        if (p->unsynced[i] == fd)
            return 0;
    if (p->nunsynced == p->capunsynced) {
        size_t cap = p->capunsynced ? p->capunsynced * 2 : 4;
        int *n = realloc(p->unsynced, cap * sizeof(*n));
        if (!n)
            return -ENOMEM;
        p->unsynced = n;
        p->capunsynced = cap;
    }
    p->unsynced[p->nunsynced++] = fd;
    return 0;
}

/* Ends the active pack: later appends start a new one. Its descriptor
 * stays open until synced (lock held). */
static void rotate_locked(struct packs *p)
{
    if (!p->active)
        return;
    bool pending = false;
    for (size_t i = 0; i < p->nunsynced; i++)
        pending |= p->unsynced[i] == p->afd;
    if (!pending && p->afd >= 0)
        close(p->afd);
    p->active = 0;
    p->afd = -1;
    p->end = 0;
}

/* Makes pack p->next the active one (lock held). */
static int start_pack(mfs_store *s, struct packs *p)
{
    char name[24];
    pack_name(name, p->next);
    int fd = openat(p->dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC,
                    0600);
    if (fd < 0)
        return -errno;
    /* its name must survive a power cut before any commit points at it */
    if (fsync(p->dirfd) != 0) {
        int e = -errno;
        close(fd);
        unlinkat(p->dirfd, name, 0);
        return store_commit_errno(s, e);
    }
    p->active = p->next++;
    p->afd = fd;
    p->end = 0;
    return 0;
}

/* Adds live (may be negative) to pack id's live bytes and raises its
 * size to size. Pack id 0 is no file: it counts the inline chunks. */
static int account(wtx *w, uint32_t id, int64_t live, uint64_t size)
{
    pack_rec r = {0, 0};
    int rc = rec_get(w->s, w->txn, id, &r);
    if (rc && rc != -ENOENT)
        return wtx_fail(w, rc);
    if (size > r.size)
        r.size = size;
    /* (never below 0: a store of format 1 counted no inline bytes until
     * its upgrade counted them) */
    r.live = live < 0 && (uint64_t)-live > r.live ? 0 : r.live + (uint64_t)live;
    if (id == 0)
        r.size = r.live;
    uint8_t k[PACKS_KEY_LEN], b[PACKS_VAL_LEN];
    mfs_be32_put(k, id);
    rec_put(b, &r);
    return tput(w, DB_PACKS, k, PACKS_KEY_LEN, b, PACKS_VAL_LEN);
}

/* Appends the cnt pieces of iov (len bytes in all) to the active pack, one
 * after the other, in one system call; *id and *off say where the first
 * went. */
static int append_v(wtx *w, struct iovec *iov, int cnt, size_t len,
                    uint32_t *id, uint64_t *off)
{
    mfs_store *s = w->s;
    struct packs *p = s->packs;
    pthread_mutex_lock(&p->lock);
    int rc = 0;
    if (p->active && p->end + len > (p->limit ? p->limit : PACK_MAX)) {
        rotate_locked(p);
        /* a store growing fast (a large write) between two tidies: the
         * next pack may be twice as big, up to PACK_MAX */
        if (p->limit && p->limit < PACK_MAX)
            p->limit = p->limit * 2 < PACK_MAX ? p->limit * 2 : PACK_MAX;
    }
    if (!p->active)
        rc = start_pack(s, p);
    size_t done = 0;
    while (!rc && done < len) {
        ssize_t n = pwritev(p->afd, iov, cnt, (off_t)(p->end + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = store_commit_errno(s, n < 0 ? -errno : -ENOSPC);
            break;
        }
        done += (size_t)n;
        /* a short write: on from where it stopped */
        while (cnt > 0 && (size_t)n >= iov->iov_len) {
            n -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (uint8_t *)iov->iov_base + n;
            iov->iov_len -= (size_t)n;
        }
    }
    if (!rc)
        rc = remember_unsynced(p, p->afd);
    if (!rc) {
        *id = p->active;
        *off = p->end;
        p->end += len;
        p->unsynced_bytes += len;
    }
    uint64_t end = p->end;
    pthread_mutex_unlock(&p->lock);
    if (rc)
        return wtx_fail(w, rc);
    return account(w, *id, (int64_t)len, end);
}

/* Appends data to the active pack; *id and *off say where it went. */
static int append(wtx *w, const void *data, size_t len, uint32_t *id,
                  uint64_t *off)
{
    struct iovec iov = {(void *)data, len};
    return append_v(w, &iov, 1, len, id, off);
}

#define PUT_RUN 64 /* chunks appended in one system call */

int chunk_vals_put(wtx *w, size_t n, const uint8_t *const *hash,
                   const uint8_t *const *data, const size_t *len)
{
    bool packs = w->s->packs && w->s->packs->writable;
    size_t i = 0;
    while (i < n && !w->err) {
        if (!packs || len[i] <= PACK_INLINE) {
            chunk_val_put(w, hash[i], data[i], len[i]);
            i++;
            continue;
        }
        /* a run of chunks for the pack, up to a MiB */
        struct iovec iov[PUT_RUN];
        size_t j = i, tot = 0;
        while (j < n && j - i < PUT_RUN && len[j] > PACK_INLINE &&
               (j == i || tot + len[j] <= ((size_t)1 << 20))) {
            iov[j - i] = (struct iovec){(void *)data[j], len[j]};
            tot += len[j++];
        }
        uint32_t id;
        uint64_t off;
        if (append_v(w, iov, (int)(j - i), tot, &id, &off))
            break;
        for (; i < j && !w->err; off += len[i++]) {
            uint8_t ref[REF_LEN];
            ref_put(ref, id, off, (uint32_t)len[i]);
            if (tput(w, DB_CHUNKS, hash[i], CHUNKS_KEY_LEN, ref, REF_LEN) == 0)
                wal_note_chunk(w->s, hash[i]);
        }
    }
    return w->err;
}

int chunk_val_put(wtx *w, const uint8_t *hash, const void *data, size_t len)
{
    if (len <= PACK_INLINE || !w->s->packs || !w->s->packs->writable) {
        if (tput(w, DB_CHUNKS, hash, CHUNKS_KEY_LEN, data, len) == 0) {
            account(w, 0, (int64_t)len, 0);
            wal_note_chunk(w->s, hash);
        }
        return w->err;
    }
    uint32_t id;
    uint64_t off;
    if (append(w, data, len, &id, &off))
        return w->err;
    uint8_t ref[REF_LEN];
    ref_put(ref, id, off, (uint32_t)len);
    if (tput(w, DB_CHUNKS, hash, CHUNKS_KEY_LEN, ref, REF_LEN) == 0)
        wal_note_chunk(w->s, hash);
    return w->err;
}

int chunk_val_drop(wtx *w, const MDB_val *v)
{
    if (!chunk_is_ref(v))
        return account(w, 0, -(int64_t)v->mv_size, 0);
    uint32_t id, len;
    uint64_t off;
    ref_get(v, &id, &off, &len);
    return account(w, id, -(int64_t)len, 0);
}

bool chunk_val_evacuating(mfs_store *s, const MDB_val *v)
{
    struct packs *p = s->packs;
    if (!p || !chunk_is_ref(v))
        return false;
    uint32_t id, len;
    uint64_t off;
    ref_get(v, &id, &off, &len);
    pthread_mutex_lock(&p->lock);
    bool out = false;
    for (size_t i = 0; i < p->nevac && !out; i++)
        out = p->evac[i] == id;
    pthread_mutex_unlock(&p->lock);
    return out;
}

int chunk_val_move(wtx *w, const MDB_val *v, uint8_t out[REF_LEN])
{
    uint8_t *buf = malloc(MFS_CHUNK_SIZE);
    if (!buf)
        return wtx_fail(w, -ENOMEM);
    uint8_t ref[REF_LEN];
    memcpy(ref, v->mv_data, REF_LEN); /* (v points into the map) */
    MDB_val old = {REF_LEN, ref};
    ssize_t n = chunk_val_copy(w->s, &old, buf);
    uint32_t id;
    uint64_t off;
    if (n < 0)
        wtx_fail(w, (int)n);
    else if (chunk_val_drop(w, &old) == 0 &&
             append(w, buf, (size_t)n, &id, &off) == 0)
        ref_put(out, id, off, (uint32_t)n);
    free(buf);
    return w->err;
}

int packs_sync(mfs_store *s)
{
    struct packs *p = s->packs;
    if (!p)
        return 0;
    pthread_mutex_lock(&p->lock);
    int rc = 0;
    for (size_t i = 0; i < p->nunsynced; i++) {
        int fd = p->unsynced[i];
        if (!rc && fdatasync(fd) != 0)
            rc = store_commit_errno(s, -errno);
        if (!rc && fd != p->afd)
            close(fd); /* a rotated pack, now durable */
    }
    if (!rc) {
        p->nunsynced = 0;
        p->unsynced_bytes = 0;
    }
    pthread_mutex_unlock(&p->lock);
    if (rc)
        mfs_log(LOG_ERR,
                "store %s: cannot flush the packs to disk: %s; the commit "
                "that needed them fails",
                s->dir, strerror(-rc));
    return rc;
}

uint64_t packs_unsynced_bytes(mfs_store *s)
{
    struct packs *p = s->packs;
    if (!p)
        return 0;
    pthread_mutex_lock(&p->lock);
    uint64_t n = p->unsynced_bytes;
    pthread_mutex_unlock(&p->lock);
    return n;
}

void packs_presync(mfs_store *s)
{
    struct packs *p = s->packs;
    if (!p)
        return;
    /* duplicates, so that no close elsewhere can hand the number to
     * another file while it is being synced */
    int fds[8];
    size_t n = 0;
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->nunsynced && n < 8; i++) {
        int fd = fcntl(p->unsynced[i], F_DUPFD_CLOEXEC, 0);
        if (fd >= 0)
            fds[n++] = fd;
    }
    pthread_mutex_unlock(&p->lock);
    /* (an error here is packs_sync's to report: it syncs them again) */
    for (size_t i = 0; i < n; i++) {
        (void)fdatasync(fds[i]);
        close(fds[i]);
    }
}

/* ---- tidying: after each sweep ---- */

typedef struct cand {
    uint32_t id;
    uint64_t size, live;
} cand;

typedef struct tidy {
    uint32_t next; /* first id not looked at yet */
    bool done;
    cand *c; /* packs with live bytes */
    size_t n, cap;
} tidy;

static int add_id(uint32_t **v, size_t *n, size_t *cap, uint32_t id)
{
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 8;
        uint32_t *x = realloc(*v, c * sizeof(**v));
        if (!x)
            return -ENOMEM;
        *v = x;
        *cap = c;
    }
    (*v)[(*n)++] = id;
    return 0;
}

/* Looks at up to 256 packs: an empty one loses its record (and is
 * deleted after the commit; the active pack is ended first); the others
 * are noted as candidates for evacuation. */
static int tidy_tx(wtx *w, void *arg)
{
    tidy *t = arg;
    struct packs *p = w->s->packs;
    MDB_cursor *c;
    int rc = mdb_cursor_open(w->txn, w->s->db[DB_PACKS], &c);
    if (rc)
        return wtx_fail(w, rc);
    uint8_t k[PACKS_KEY_LEN];
    mfs_be32_put(k, t->next);
    MDB_val key = {PACKS_KEY_LEN, k}, val;
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    int seen = 0;
    while (rc == 0 && seen++ < 256) {
        if (key.mv_size != PACKS_KEY_LEN || val.mv_size != PACKS_VAL_LEN) {
            rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
            continue;
        }
        uint32_t id = mfs_be32_get(key.mv_data);
        cand x = {id, mfs_be64_get(val.mv_data),
                  mfs_be64_get((uint8_t *)val.mv_data + PACKS_VAL_LIVE)};
        t->next = id + 1;
        if (x.live == 0) {
            pthread_mutex_lock(&p->lock);
            if (p->active == id)
                rotate_locked(p);
            int e = add_id(&p->doomed, &p->ndoomed, &p->capdoomed, id);
            pthread_mutex_unlock(&p->lock);
            wtx_mut(w);
            wtx_undo_cursor(w, c);
            if (e || (e = mdb_cursor_del(c, 0)) != 0) {
                rc = e;
                break;
            }
            rc = cursor_after_del(c, &key, &val);
            continue;
        }
        if (x.size > x.live) {
            if (t->n == t->cap) {
                size_t cap = t->cap ? t->cap * 2 : 16;
                cand *nc = realloc(t->c, cap * sizeof(*nc));
                if (!nc) {
                    rc = -ENOMEM;
                    break;
                }
                t->c = nc;
                t->cap = cap;
            }
            t->c[t->n++] = x;
        }
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (rc == MDB_NOTFOUND)
        t->done = true;
    else if (rc)
        wtx_fail(w, rc);
    return w->err;
}

/* sparsest first: the least live per byte */
static int by_density(const void *a, const void *b)
{
    const cand *x = a, *y = b;
    /* live/size compared without division */
    unsigned __int128 l = (unsigned __int128)x->live * y->size,
                      r = (unsigned __int128)y->live * x->size;
    return l < r ? -1 : l > r;
}

/* Which packs to evacuate: the sparsest, until the dead bytes left in
 * packs are at most an eighth of the live ones (or PACK_SLACK). So the
 * pack files hold at most 1.125 times the live chunk bytes (plus the
 * slack), and a pack is copied only when that bound asks for it. (A
 * quarter let a 20 MB file's last version sit in a 24.8 MB pack with the
 * tail of the one before, and the store 13.5 MB over its live data:
 * fs_collect, issue 10's "within 10 MB", failed in a CI rehearsal.) */
static void pick_evac(struct packs *p, tidy *t)
{
    uint64_t live = 0, dead = 0;
    for (size_t i = 0; i < t->n; i++) {
        live += t->c[i].live;
        dead += t->c[i].size - t->c[i].live;
    }
    uint64_t allow = live / 8 > PACK_SLACK ? live / 8 : PACK_SLACK;
    if (t->n > 1)
        qsort(t->c, t->n, sizeof(*t->c), by_density);
    pthread_mutex_lock(&p->lock);
    p->limit = live / 4 < PACK_MIN   ? PACK_MIN
               : live / 4 > PACK_MAX ? PACK_MAX
                                     : live / 4;
    p->nevac = 0;
    for (size_t i = 0; i < t->n && dead > allow; i++) {
        if (add_id(&p->evac, &p->nevac, &p->capevac, t->c[i].id))
            break;
        dead -= t->c[i].size - t->c[i].live;
        if (p->active == t->c[i].id)
            rotate_locked(p); /* (evacuated into a new one) */
    }
    pthread_mutex_unlock(&p->lock);
}

/* Deletes the doomed packs whose records are gone from the committed
 * state, if no txn is open (else they wait for the next pass). */
static void delete_doomed(mfs_store *s, uint64_t *freed)
{
    struct packs *p = s->packs;
    pthread_mutex_lock(&p->lock);
    size_t n = p->ndoomed;
    uint32_t *ids = n ? malloc(n * sizeof(*ids)) : NULL;
    if (ids)
        memcpy(ids, p->doomed, n * sizeof(*ids));
    pthread_mutex_unlock(&p->lock);
    if (!ids)
        return;
    /* only those whose removal is committed */
    MDB_txn *txn;
    bool *ok = calloc(n, sizeof(*ok));
    if (!ok || store_read_begin_committed(s, &txn)) {
        free(ok);
        free(ids);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        pack_rec r;
        ok[i] = rec_get(s, txn, ids[i], &r) == -ENOENT;
    }
    store_read_end(s, txn);
    bool locked = false;
    for (int tries = 0; tries < 50 && !locked; tries++) {
        locked = pthread_rwlock_trywrlock(&s->maplock) == 0;
        if (!locked) {
            struct timespec d = {0, 1000000};
            nanosleep(&d, NULL);
        }
    }
    if (!locked) {
        free(ok);
        free(ids);
        return; /* readers all the time: the next pass */
    }
    /* Holding maplock for writing once is all it takes: every read txn
     * that could hold an older reference has ended, and later ones see
     * none. Only the cached descriptors are closed under it; the files go
     * after it is released (an unlink of a large file can take
     * milliseconds, and every FUSE request waits while maplock is held). */
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < n; i++) {
        if (!ok[i])
            continue;
        fd_forget(p, ids[i]);
        for (size_t j = 0; j < p->ndoomed; j++)
            if (p->doomed[j] == ids[i]) {
                p->doomed[j] = p->doomed[--p->ndoomed];
                break;
            }
    }
    pthread_mutex_unlock(&p->lock);
    pthread_rwlock_unlock(&s->maplock);
    for (size_t i = 0; i < n; i++) {
        if (!ok[i])
            continue;
        char name[24];
        struct stat st;
        pack_name(name, ids[i]);
        if (fstatat(p->dirfd, name, &st, 0) == 0)
            *freed += (uint64_t)st.st_blocks * 512;
        if (unlinkat(p->dirfd, name, 0) != 0 && errno != ENOENT)
            mfs_log(LOG_WARNING,
                    "store %s: cannot delete the unused packs/%s: %s; the "
                    "next mount tries again",
                    s->dir, name, strerror(errno));
        /* paced: freeing a pack's blocks is file system journal work that
         * the store's own commits queue behind */
        struct timespec d = {0, 2000000};
        nanosleep(&d, NULL);
    }
    free(ok);
    free(ids);
}

int packs_tidy(mfs_store *s,
               int (*write)(mfs_store *, int (*)(wtx *, void *), void *,
                            uint64_t *),
               uint64_t *max_us, bool *sweep_again, uint64_t *freed)
{
    struct packs *p = s->packs;
    *sweep_again = false;
    if (!p || !p->writable)
        return 0;
    tidy t = {.next = 1}; /* (0 is the inline chunks' count) */
    int rc = 0;
    while (!rc && !t.done)
        rc = write(s, tidy_tx, &t, max_us);
    if (!rc) {
        pick_evac(p, &t);
        pthread_mutex_lock(&p->lock);
        *sweep_again = p->nevac > 0;
        bool doomed = p->ndoomed > 0;
        pthread_mutex_unlock(&p->lock);
        if (doomed && (rc = mfs_store_commit(s, 1)) == 0)
            delete_doomed(s, freed);
    }
    free(t.c);
    return rc;
}

uint64_t packs_held(mfs_store *s, MDB_txn *txn)
{
    uint64_t held = 0;
    MDB_cursor *c;
    MDB_val key, val;
    if (mdb_cursor_open(txn, s->db[DB_PACKS], &c))
        return 0;
    int r = mdb_cursor_get(c, &key, &val, MDB_FIRST);
    while (r == 0) {
        if (val.mv_size == PACKS_VAL_LEN)
            held += mfs_be64_get((uint8_t *)val.mv_data + PACKS_VAL_LIVE);
        r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    return held;
}

int packs_count_inline(wtx *w)
{
    MDB_cursor *c;
    MDB_val key, val;
    int rc = mdb_cursor_open(w->txn, w->s->db[DB_CHUNKS], &c);
    if (rc)
        return wtx_fail(w, rc);
    uint64_t n = 0;
    rc = mdb_cursor_get(c, &key, &val, MDB_FIRST);
    while (rc == 0) {
        if (!chunk_is_ref(&val))
            n += val.mv_size;
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND)
        return wtx_fail(w, rc);
    uint8_t k[PACKS_KEY_LEN], b[PACKS_VAL_LEN];
    mfs_be32_put(k, 0);
    rec_put(b, &(pack_rec){n, n});
    return tput(w, DB_PACKS, k, PACKS_KEY_LEN, b, PACKS_VAL_LEN);
}

bool packs_doomed(mfs_store *s)
{
    struct packs *p = s->packs;
    if (!p)
        return false;
    pthread_mutex_lock(&p->lock);
    bool out = p->ndoomed > 0;
    pthread_mutex_unlock(&p->lock);
    return out;
}

void packs_stats(mfs_store *s, MDB_txn *txn, uint64_t *files, uint64_t *bytes,
                 uint64_t *live, uint64_t *inline_live)
{
    *files = *bytes = *live = *inline_live = 0;
    MDB_cursor *c;
    MDB_val key, val;
    if (mdb_cursor_open(txn, s->db[DB_PACKS], &c))
        return;
    int r = mdb_cursor_get(c, &key, &val, MDB_FIRST);
    while (r == 0) {
        if (val.mv_size == PACKS_VAL_LEN && key.mv_size == PACKS_KEY_LEN &&
            mfs_be32_get(key.mv_data) != 0) {
            (*files)++;
            *bytes += mfs_be64_get(val.mv_data);
            *live += mfs_be64_get((uint8_t *)val.mv_data + PACKS_VAL_LIVE);
        } else if (val.mv_size == PACKS_VAL_LEN &&
                   key.mv_size == PACKS_KEY_LEN) {
            *inline_live =
                mfs_be64_get((uint8_t *)val.mv_data + PACKS_VAL_LIVE);
        }
        r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
}

/* ---- open and close ---- */

/* Removes pack files without a record; truncates the last pack to its
 * committed size and goes on appending to it while it has room. */
static int packs_recover(mfs_store *s, struct packs *p)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return mdb_to_errno(rc);
    uint32_t last = 0;
    pack_rec lr = {0, 0};
    MDB_cursor *c;
    MDB_val key, val;
    if (mdb_cursor_open(txn, s->db[DB_PACKS], &c) == 0) {
        if (mdb_cursor_get(c, &key, &val, MDB_LAST) == 0 &&
            key.mv_size == PACKS_KEY_LEN && val.mv_size == PACKS_VAL_LEN) {
            last = mfs_be32_get(key.mv_data);
            lr.size = mfs_be64_get(val.mv_data);
        }
        mdb_cursor_close(c);
    }
    /* every recorded pack must be there, at least as long as recorded */
    if (mdb_cursor_open(txn, s->db[DB_PACKS], &c) == 0) {
        int r = mdb_cursor_get(c, &key, &val, MDB_FIRST);
        while (r == 0) {
            char name[24];
            struct stat st;
            if (key.mv_size == PACKS_KEY_LEN && val.mv_size == PACKS_VAL_LEN &&
                mfs_be32_get(key.mv_data) != 0) {
                uint64_t size = mfs_be64_get(val.mv_data);
                pack_name(name, mfs_be32_get(key.mv_data));
                bool missing = fstatat(p->dirfd, name, &st, 0) != 0;
                if (missing || (uint64_t)st.st_size < size)
                    mfs_log(LOG_ERR,
                            "store %s: pack %s is %s: the chunks in it are "
                            "unreadable here (files that need them read "
                            "EIO; `meshfs stat` counts them)",
                            s->dir, name,
                            missing ? "missing" : "shorter than committed");
            }
            r = mdb_cursor_get(c, &key, &val, MDB_NEXT);
        }
        mdb_cursor_close(c);
    }
    int dfd = dup(p->dirfd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    struct dirent *e;
    uint32_t top = last;
    while (d && (e = readdir(d)) != NULL) {
        unsigned id;
        char tail[8];
        if (sscanf(e->d_name, "%8x.%7s", &id, tail) != 2 ||
            strcmp(tail, "pack") || strlen(e->d_name) != 13)
            continue;
        if (id > top)
            top = id;
        pack_rec r;
        if (rec_get(s, txn, id, &r) == -ENOENT) {
            if (unlinkat(p->dirfd, e->d_name, 0) == 0)
                mfs_log(LOG_INFO,
                        "store %s: removed pack %s (no committed reference)",
                        s->dir, e->d_name);
        }
    }
    if (d)
        closedir(d);
    else if (dfd >= 0)
        close(dfd);
    mdb_txn_abort(txn);
    p->next = top + 1;
    if (last && lr.size < PACK_MAX / 2) {
        char name[24];
        pack_name(name, last);
        int fd = openat(p->dirfd, name, O_RDWR | O_CLOEXEC);
        if (fd >= 0 && ftruncate(fd, (off_t)lr.size) == 0) {
            p->active = last;
            p->afd = fd;
            p->end = lr.size;
        } else if (fd >= 0) {
            close(fd);
        }
    }
    return 0;
}

int packs_open(mfs_store *s, bool writable)
{
    struct packs *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    pthread_mutex_init(&p->lock, NULL);
    p->afd = -1;
    p->writable = writable;
    char path[4096];
    snprintf(path, sizeof(path), "%s/packs", s->dir);
    if (writable && mkdir(path, 0700) != 0 && errno != EEXIST) {
        int e = -errno;
        free(p);
        return e;
    }
    p->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (p->dirfd < 0 && (writable || errno != ENOENT)) {
        int e = -errno;
        free(p);
        return e;
    }
    s->packs = p;
    if (writable)
        return packs_recover(s, p);
    return 0;
}

void packs_close(mfs_store *s)
{
    struct packs *p = s->packs;
    if (!p)
        return;
    for (size_t i = 0; i < p->nunsynced; i++)
        if (p->unsynced[i] != p->afd)
            close(p->unsynced[i]);
    if (p->afd >= 0)
        close(p->afd);
    for (int i = 0; i < PACK_FDS; i++)
        if (p->fds[i].id)
            close(p->fds[i].fd);
    if (p->dirfd >= 0)
        close(p->dirfd);
    pthread_mutex_destroy(&p->lock);
    free(p->unsynced);
    free(p->evac);
    free(p->doomed);
    free(p);
    s->packs = NULL;
}
