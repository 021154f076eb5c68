/*
 * wal.c - the intent log: fsync() in one flush (issue 9).
 *
 * With group commit (the daemon) every LMDB commit flushes its pages
 * (MDB_NOMETASYNC) and a durable one then flushes its meta page too: an
 * fsync() cost two device flushes and 17 pages, and waited for the commit
 * thread (p50 560-650 us where passthrough_ll's append + fsync takes
 * 280-310 us). Here fsync instead appends one record to STORE/intent.log,
 * a file written full of zeros once when it is made (so an overwrite in
 * place changes no metadata: fdatasync is one data write and one flush),
 * and fdatasyncs it. LMDB goes on committing in the background as before;
 * nothing here changes what a commit or a sync does.
 *
 * What a record holds: every op of this node's own made since the last
 * point that LMDB holds durably and not logged yet (seq in (wal_seq,
 * s->seq], read from the op log through the group txn), and every chunk
 * put since that point and not logged yet (the `fresh` list, noted by
 * pack.c's puts, emptied at each sync of LMDB), bytes and all. The
 * invariant, under wlock: every own op with seq <= wal_seq and every
 * fresh chunk before wal_logged is durable, in LMDB (synced) or in a
 * record that its fdatasync made durable. So the records need nothing but
 * each other and LMDB's durable state: recovery (open.c replay_log) puts
 * their chunks, applies their ops as a peer's (idempotent: an op at or
 * below the vector is a duplicate), and syncs.
 *
 * The write concern (DESIGN P10) uses the same log for peers' ops: a
 * member asked to hold them (mfs_store_hold_soon, sync/'s HELD) has the
 * commit thread append a record of every op applied that is not durable
 * yet, every origin's (above wal_vv and LMDB's durable vector, up to the
 * group txn's), with the fresh chunks, and one flush makes them durable
 * where a sync of LMDB takes two. The snapshot it then serves
 * (vv_held_log: the txn's vector and wanted chunks' least stamps, taken
 * under wlock with the record) is what HELD reports until a sync of LMDB
 * is newer. A half whose records held peers' ops (wal_half_peers) is
 * overwritten, when no sync covered it, only after a record of every
 * origin's ops above LMDB's durable vector.
 *
 * Record: u32 magic, u32 crc32 of the rest, u64 epoch, u32 payload length,
 * u32 chunks; then each chunk (hash, u32 length, bytes); then the ops
 * (mfs_store_ops_since's batch format). A chunk whose first bytes are all
 * of one of the last WAL_RING chunks logged in the same half is logged as
 * the rest only (hash, u32 length | WAL_DELTA, the base's hash, u32 its
 * length, the bytes after it): a file appended to and fsync'd re-cuts its
 * last chunk each time, and logging it whole made every record ~30 kB
 * (an O_DSYNC overwrite of 32 KiB takes 220 us here, of 4 KiB 120 us).
 * Replay rebuilds such a chunk from the same ring, kept as it reads, never
 * from the store (where the base, a superseded chunk, may be collected).
 * The file is two halves; records
 * follow one another from the start of the current half, all of one
 * epoch. When the next record does not fit, the other half begins, in a
 * new epoch, and a sync of LMDB is asked for (without waiting). The other
 * half's records must be needed no more: a sync covered a commit made
 * after the last of them (the one asked for when the current half began,
 * as a rule), or else the new half begins with a record of everything
 * not durable in LMDB (ops since the last sync's, every fresh chunk). A
 * torn record at the start of a half loses nothing: the other half still
 * holds all it covered. Recovery
 * reads each half's records while they are whole (CRC) and of its first
 * one's epoch, and replays the older half first. A record larger than a
 * half, a fresh list that overflowed (a large copy between two syncs), or
 * any I/O error sends fsync the old way (mfs_store_commit(s, 1)), which
 * is always right.
 *
 * Locks: wal_mu (MFS_LOCK_STORE_LOG, before wlock) serialises appends, so
 * records land in order and the fdatasync runs without wlock (writers go
 * on meanwhile); every other wal_ field is read and written under wlock.
 */
#include "kv.h"
#include "lock.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define WAL_MAGIC 0x4d46574cu         /* "MFWL" */
#define WAL_HEAD 24                   /* bytes before a record's payload */
#define WAL_SIZE ((uint64_t)1 << 20)  /* the file, zeros at first */
#define WAL_MIN ((uint64_t)256 << 10) /* smaller: none (a tiny disk) */
#define WAL_READ_MAX ((uint64_t)64 << 20) /* a larger file is not ours */
#define WAL_FRESH_MAX 4096            /* chunks noted between two syncs */
#define WAL_DELTA 0x80000000u         /* a chunk logged as base + rest */
#define WAL_DELTA_MIN 1024            /* a shorter base is not worth it */

/* bytes [8, n) of a record: what its CRC covers */
static uint32_t rec_crc(const uint8_t *rec, size_t n)
{
    return (uint32_t)crc32(0L, rec + 8, (uInt)(n - 8));
}

static uint64_t half_size(uint64_t size)
{
    return size / 2 / 4096 * 4096;
}

/* The file full of zeros from `from` up to `to`, durable, its name too. */
static int wal_fill(mfs_store *s, uint64_t from, uint64_t to)
{
    int rc = zero_write(s->wal_fd, from, to);
    if (rc)
        return rc;
    if (fdatasync(s->wal_fd))
        return -errno;
    int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -errno;
    rc = fsync(dfd) ? -errno : 0;
    close(dfd);
    return rc;
}

/* The whole records of one half, from its start (buf[0, n)): their bytes,
 * and their epoch in *epoch (0: none). */
static size_t chain(const uint8_t *buf, size_t n, uint64_t *epoch)
{
    size_t off = 0;
    *epoch = 0;
    while (off + WAL_HEAD <= n) {
        const uint8_t *h = buf + off;
        mfs_rbuf r;
        mfs_rbuf_init(&r, h, WAL_HEAD);
        uint32_t magic = mfs_get_u32(&r), crc = mfs_get_u32(&r);
        uint64_t ep = mfs_get_u64(&r);
        uint32_t plen = mfs_get_u32(&r);
        if (magic != WAL_MAGIC || !ep || plen > n - off - WAL_HEAD ||
            (off && ep != *epoch) || rec_crc(h, WAL_HEAD + plen) != crc)
            break;
        *epoch = ep;
        off += WAL_HEAD + plen;
    }
    return off;
}

/* Reads both halves' records into *recs (malloc'd; NULL: none), *len
 * bytes, the older epoch's first; *epoch the newest epoch seen. */
static int wal_read(mfs_store *s, uint64_t size, uint64_t *epoch,
                    uint8_t **recs, size_t *nrecs)
{
    *epoch = 0;
    *recs = NULL;
    *nrecs = 0;
    uint64_t half = half_size(size);
    if (half < WAL_HEAD)
        return 0;
    uint8_t *buf = malloc(2 * half), *out = malloc(2 * half);
    ssize_t n = buf && out ? pread(s->wal_fd, buf, 2 * half, 0) : -1;
    if (n != (ssize_t)(2 * half)) {
        int rc = !buf || !out ? -ENOMEM : n < 0 ? -errno : -EIO;
        free(buf);
        free(out);
        return rc;
    }
    uint64_t e[2];
    size_t len[2] = {chain(buf, half, &e[0]), chain(buf + half, half, &e[1])};
    int first = e[1] && e[1] < e[0] ? 1 : 0; /* the older one first */
    size_t k = 0;
    for (int i = 0; i < 2; i++) {
        int h = i ? !first : first;
        memcpy(out + k, buf + (size_t)h * half, len[h]);
        k += len[h];
    }
    free(buf);
    *epoch = e[0] > e[1] ? e[0] : e[1];
    if (!k) {
        free(out);
        out = NULL;
    }
    *recs = out;
    *nrecs = k;
    return 0;
}

int wal_open(mfs_store *s)
{
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/intent.log", s->dir) >=
        (int)sizeof(path))
        return -ENAMETOOLONG;
    /* what LMDB holds now is durable before fsync trusts it (a kill -9
     * leaves the last commit's meta page unsynced) */
    int rc = mdb_to_errno(mdb_env_sync(s->env, 1));
    if (rc)
        return rc;
    s->wal_fd = open(path, O_RDWR | O_CLOEXEC);
    if (s->wal_fd < 0 && errno != ENOENT)
        return -errno;
    uint64_t epoch = 0;
    off_t size = 0;
    if (s->wal_fd >= 0) {
        size = lseek(s->wal_fd, 0, SEEK_END);
        if (size < 0 || (uint64_t)size > WAL_READ_MAX)
            return size < 0 ? -errno : -EBADF;
        rc = wal_read(s, (uint64_t)size, &epoch, &s->wal_recs, &s->wal_nrecs);
        if (rc) /* records we cannot read: the open fails */
            return rc;
    }
    /* Its size: WAL_SIZE, less on a small disk (at most a sixteenth of
     * the free space, as zero_ahead takes); none below WAL_MIN, and none
     * on tmpfs, where fsync costs nothing. */
    int efd = -1;
    mdb_env_get_fd(s->env, &efd); /* (its file system is the log's) */
    uint64_t want = free_share(efd, WAL_SIZE) / 8192 * 8192;
    bool tmpfs = on_tmpfs(efd);
    if ((uint64_t)size >= WAL_MIN) {
        s->wal_size = (uint64_t)size;
    } else if (!tmpfs && want >= WAL_MIN) {
        if (s->wal_fd < 0)
            s->wal_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        rc = s->wal_fd < 0 ? -errno : wal_fill(s, (uint64_t)size, want);
        if (!rc)
            s->wal_size = want;
        else if (s->wal_fd >= 0 && ftruncate(s->wal_fd, size) != 0)
            rc = -errno; /* (the space back) */
        if (rc)
            mfs_log(LOG_WARNING,
                    "store %s: cannot make the intent log %s: %s; fsync "
                    "commits the store instead",
                    s->dir, path, strerror(-rc));
    }
    /* a new epoch, past every record still in the file */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t t = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    s->wal_epoch = t > epoch ? t : epoch + 1;
    s->wal_half = 0;
    s->wal_off = 0;
    s->wal_covered = true;
    return 0;
}

int wal_reset_file(mfs_store *s)
{
    static const uint8_t zero[WAL_HEAD];
    if (s->wal_fd < 0 || !s->wal_size)
        return 0;
    int rc = pwrite_all(s->wal_fd, zero, sizeof(zero), 0);
    if (!rc)
        rc = pwrite_all(s->wal_fd, zero, sizeof(zero), half_size(s->wal_size));
    if (!rc && fdatasync(s->wal_fd))
        rc = -errno;
    return rc;
}

void wal_close(mfs_store *s)
{
    if (s->wal_fd >= 0) {
        /* the last sync covered every record (wal_synced): the next open
         * has nothing to replay */
        if (s->wal_written && s->wal_covered)
            wal_reset_file(s);
        close(s->wal_fd);
    }
    s->wal_fd = -1;
    free(s->wal_fresh);
    s->wal_fresh = NULL;
    free(s->wal_buf);
    s->wal_buf = NULL;
    free(s->wal_base);
    s->wal_base = NULL;
    free(s->wal_recs);
    s->wal_recs = NULL;
    mfs_vv_free(&s->wal_vv);
}

/* Replay's ring: the last WAL_RING chunks of the chain, whole. */
typedef struct ring {
    uint8_t hash[WAL_RING][MFS_HASH_LEN];
    uint8_t *data[WAL_RING];
    uint32_t len[WAL_RING];
    unsigned n;
} ring;

static void ring_clear(ring *r)
{
    for (unsigned i = 0; i < WAL_RING; i++) {
        free(r->data[i]);
        r->data[i] = NULL;
    }
    r->n = 0;
}

static const uint8_t *ring_find(const ring *r, const uint8_t *h, uint32_t *len)
{
    unsigned n = r->n < WAL_RING ? r->n : WAL_RING;
    for (unsigned i = 0; i < n; i++)
        if (!memcmp(r->hash[i], h, MFS_HASH_LEN)) {
            *len = r->len[i];
            return r->data[i];
        }
    return NULL;
}

/* One chunk entry of a record (r over the payload): its hash and whole
 * bytes in *out (owned by the ring, which keeps it as a base), or NULL
 * when its base is not in the ring (never, from wal_fsync's records). */
static int ring_take(ring *rg, mfs_rbuf *r, const uint8_t **hash,
                     const uint8_t **out, uint32_t *len)
{
    *hash = mfs_get_bytes(r, MFS_HASH_LEN);
    uint32_t n = mfs_get_u32(r);
    const uint8_t *base = NULL, *bh = NULL;
    uint32_t blen = 0, have = 0;
    if (n & WAL_DELTA) {
        n &= ~WAL_DELTA;
        bh = mfs_get_bytes(r, MFS_HASH_LEN);
        blen = mfs_get_u32(r);
        base = bh ? ring_find(rg, bh, &have) : NULL;
    }
    const uint8_t *rest = mfs_get_bytes(r, n - (blen < n ? blen : n));
    if (r->err || n > MFS_CHUNK_SIZE || blen > n || (bh && (!base || have < blen)))
        return -EBADMSG;
    uint8_t *whole = malloc(n ? n : 1);
    if (!whole)
        return -ENOMEM;
    if (base)
        memcpy(whole, base, blen);
    memcpy(whole + blen, rest, n - blen);
    unsigned k = rg->n++ % WAL_RING;
    free(rg->data[k]);
    memcpy(rg->hash[k], *hash, MFS_HASH_LEN);
    rg->data[k] = whole;
    rg->len[k] = n;
    *out = whole;
    *len = n;
    return 0;
}

int wal_each(const uint8_t *recs, size_t len,
             int (*fn)(const uint8_t *hash, const uint8_t *data, size_t n,
                       const uint8_t *ops, size_t opslen, void *arg),
             void *arg)
{
    ring rg = {0};
    uint64_t epoch = 0;
    size_t off = 0;
    int rc = 0;
    while (!rc && off + WAL_HEAD <= len) {
        mfs_rbuf r;
        mfs_rbuf_init(&r, recs + off + 8, 16);
        uint64_t ep = mfs_get_u64(&r);
        uint32_t plen = mfs_get_u32(&r), nch = mfs_get_u32(&r);
        if (ep != epoch) /* the other half's chain: its own bases */
            ring_clear(&rg);
        epoch = ep;
        const uint8_t *p = recs + off + WAL_HEAD;
        off += WAL_HEAD + plen;
        mfs_rbuf_init(&r, p, plen);
        for (uint32_t i = 0; i < nch && !rc; i++) {
            const uint8_t *h, *d;
            uint32_t n;
            rc = ring_take(&rg, &r, &h, &d, &n);
            if (!rc)
                rc = fn(h, d, n, NULL, 0, arg);
        }
        size_t left = mfs_rbuf_left(&r);
        if (!rc && left)
            rc = fn(NULL, NULL, 0, p + plen - left, left, arg);
    }
    ring_clear(&rg);
    return rc;
}

void wal_start(mfs_store *s)
{
    /* (after the replay synced everything: all is durable) */
    mfs_lock_take(&s->wlock, MFS_LOCK_STORE_W);
    free(s->wal_recs);
    s->wal_recs = NULL;
    s->wal_nrecs = 0;
    s->wal_seq = s->wal_commit_seq = s->wal_synced_seq = s->seq;
    s->wal_nfresh = s->wal_logged = s->wal_commit_fresh = 0;
    s->wal_fresh_over = false;
    s->wal_ring_n = 0;
    s->wal_on = s->gc_on && s->wal_fd >= 0 && s->wal_size >= WAL_MIN;
    mfs_lock_drop(&s->wlock);
}

void wal_note_chunk(mfs_store *s, const uint8_t *hash)
{
    if (!s->wal_on || s->wal_fresh_over)
        return;
    if (s->wal_nfresh == s->wal_fresh_cap) {
        size_t cap = s->wal_fresh_cap ? s->wal_fresh_cap * 2 : 64;
        uint8_t *p = cap <= WAL_FRESH_MAX
                         ? realloc(s->wal_fresh, cap * MFS_HASH_LEN)
                         : NULL;
        if (!p) {
            s->wal_fresh_over = true; /* fsync the old way until a sync */
            return;
        }
        s->wal_fresh = p;
        s->wal_fresh_cap = cap;
    }
    memcpy(s->wal_fresh + s->wal_nfresh++ * MFS_HASH_LEN, hash, MFS_HASH_LEN);
}

void wal_committed(mfs_store *s)
{
    s->wal_commit_seq = s->seq;
    s->wal_commit_fresh = s->wal_nfresh;
    s->wal_commit_over = s->wal_fresh_over;
}

void wal_synced(mfs_store *s, uint64_t gen)
{
    /* (while a failed commit's replay is owed, the log holds what LMDB
     * does not, whatever a sync covered: a close then reset the log) */
    if (!s->wal_on || s->wal_replay != WAL_REPLAY_NONE)
        return;
    /* what the last commit held is durable now */
    s->wal_synced_seq = s->wal_commit_seq;
    if (s->wal_seq < s->wal_commit_seq)
        s->wal_seq = s->wal_commit_seq;
    size_t n = s->wal_commit_over ? s->wal_nfresh : s->wal_commit_fresh;
    if (s->wal_commit_over) /* all it missed is synced */
        s->wal_fresh_over = s->wal_commit_over = false;
    if (s->wal_nfresh > n) /* (none: wal_fresh may be NULL, UBSan) */
        memmove(s->wal_fresh, s->wal_fresh + n * MFS_HASH_LEN,
                (s->wal_nfresh - n) * MFS_HASH_LEN);
    s->wal_nfresh -= n;
    s->wal_logged = s->wal_logged > n ? s->wal_logged - n : 0;
    s->wal_commit_fresh -= n < s->wal_commit_fresh ? n : s->wal_commit_fresh;
    s->wal_dropped += n;
    s->wal_synced_gen = gen;
    if (s->wal_gen <= gen)
        s->wal_covered = true; /* every record made before that commit */
}

void wal_lost(mfs_store *s)
{
    if (!s->wal_on)
        return;
    /* A group commit failed and took its calls back (their ops' seqs
     * will be used again): records holding them must never be replayed.
     * Both halves' first headers are zeroed (an append in flight checks
     * wal_lost after it: wal_fsync) and what was synced last is all that
     * is durable. */
    int rc = wal_reset_file(s);
    if (rc)
        mfs_log(LOG_ERR, "store %s: cannot clear the intent log: %s", s->dir,
                strerror(-rc));
    s->wal_half = 0;
    s->wal_off = 0;
    s->wal_epoch++;
    s->wal_lost++;
    s->wal_half_gen[0] = s->wal_half_gen[1] = 0; /* (cleared: nothing) */
    s->wal_ring_n = 0;
    s->wal_seq = s->wal_synced_seq;
    s->wal_logged = 0; /* (the synced ones were dropped at the sync) */
    /* peers' ops it applied are gone too (they come again from their
     * origins); what the write concern was told of them cannot be taken
     * back (docs/REPLICATION.md "Write concern") */
    mfs_vv_free(&s->wal_vv);
    s->wal_half_peers[0] = s->wal_half_peers[1] = false;
    pthread_mutex_lock(&s->vvlock);
    s->held_log_ok = false;
    pthread_mutex_unlock(&s->vvlock);
}

bool wal_failed(mfs_store *s)
{
    /* What the log holds since LMDB's last sync is what fsync said was
     * durable, and with a write concern members may hold its ops already
     * (they leave with their record: append's logged_cb). Clearing it
     * lost an fsync'd change, and gave those ops' sequence numbers to
     * others: the commit thread applies the records again instead
     * (gc_replay), before any other write; a broken log's whole records
     * too (a torn one ends its chain). A log with nothing since the sync
     * is cleared, as before. */
    if (s->wal_on && !s->wal_covered && (s->wal_written || s->wal_broken)) {
        s->wal_replay = WAL_REPLAY_NOW;
        return true;
    }
    wal_lost(s);
    return false;
}

int wal_reread(mfs_store *s, uint8_t **recs, size_t *len)
{
    uint64_t epoch;
    return wal_read(s, s->wal_size, &epoch, recs, len);
}

/* Appends origin's ops in (from, to] from txn's op log to b. */
static int put_ops(mfs_store *s, MDB_txn *txn, uint64_t origin, uint64_t from,
                   uint64_t to, mfs_wbuf *b)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, s->db[DB_OPS], &c);
    if (rc)
        return mdb_to_errno(rc);
    uint8_t k[OPS_KEY_LEN];
    ops_key_put(k, origin, from + 1);
    MDB_val key = {OPS_KEY_LEN, k}, val;
    rc = mdb_cursor_get(c, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && mfs_be64_get(key.mv_data) == origin &&
           mfs_be64_get((const uint8_t *)key.mv_data + 8) <= to && !b->err) {
        mfs_put_u32(b, (uint32_t)val.mv_size);
        mfs_put_bytes(b, val.mv_data, val.mv_size);
        rc = mdb_cursor_get(c, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(c);
    if (b->err)
        return 1; /* too large */
    return rc && rc != MDB_NOTFOUND ? mdb_to_errno(rc) : 0;
}

static void ring_note(mfs_store *s, const uint8_t *h, uint32_t len)
{
    unsigned k = s->wal_ring_n++ % WAL_RING;
    memcpy(s->wal_ring[k], h, MFS_HASH_LEN);
    s->wal_ring_len[k] = len;
}

/* e: a chunk entry just made whole (hash, u32 n, n bytes). When one of
 * the ring's chunks is all of its first bytes, rewrites it as a delta
 * entry (hash, n | WAL_DELTA, base hash, u32 base length, the rest).
 * Returns the entry's bytes. */
static size_t delta(mfs_store *s, MDB_txn *txn, uint8_t *e, size_t n)
{
    size_t whole = MFS_HASH_LEN + 4 + n;
    if (!s->wal_base && !(s->wal_base = malloc(MFS_CHUNK_SIZE)))
        return whole;
    /* the longest base first: the last chunk logged, as a rule */
    unsigned k = s->wal_ring_n < WAL_RING ? s->wal_ring_n : WAL_RING;
    bool tried[WAL_RING] = {false};
    for (unsigned round = 0; round < k; round++) {
        unsigned best = WAL_RING;
        for (unsigned i = 0; i < k; i++)
            if (!tried[i] && s->wal_ring_len[i] < n &&
                s->wal_ring_len[i] >= WAL_DELTA_MIN &&
                (best == WAL_RING ||
                 s->wal_ring_len[i] > s->wal_ring_len[best]))
                best = i;
        if (best == WAL_RING)
            break;
        tried[best] = true;
        uint32_t blen = s->wal_ring_len[best];
        MDB_val v;
        if (tget(s, txn, DB_CHUNKS, s->wal_ring[best], CHUNKS_KEY_LEN, &v) ||
            chunk_val_len(&v) != blen ||
            chunk_val_copy(s, &v, s->wal_base) != (ssize_t)blen ||
            memcmp(s->wal_base, e + MFS_HASH_LEN + 4, blen))
            continue;
        uint8_t *p = e + MFS_HASH_LEN;
        memmove(p + 4 + MFS_HASH_LEN + 4, p + 4 + blen, n - blen);
        mfs_be32_put(p, (uint32_t)n | WAL_DELTA);
        memcpy(p + 4, s->wal_ring[best], MFS_HASH_LEN);
        mfs_be32_put(p + 4 + MFS_HASH_LEN, blen);
        return MFS_HASH_LEN + 4 + MFS_HASH_LEN + 4 + (n - blen);
    }
    return whole;
}

/* Builds in s->wal_buf (cap bytes) the record of epoch holding our ops in
 * (from, s->seq] and the fresh chunks from index first on; *len its bytes,
 * 0 when it holds nothing. Under wlock. 1 if it does not fit. */
/* Where peers' ops to log begin: above both a and b (b may be NULL). */
static uint64_t peer_from(const mfs_vv *a, const mfs_vv *b, uint64_t origin)
{
    uint64_t x = mfs_vv_get(a, origin), y = b ? mfs_vv_get(b, origin) : 0;
    return x > y ? x : y;
}

/* The record of own ops in (from, s->seq], fresh chunks from first on,
 * and, with pa, every other origin's ops above pa and pb up to cur (the
 * txn's vector), into s->wal_buf (*len: 0 when there is nothing). 1:
 * larger than cap. */
static int build(mfs_store *s, MDB_txn *txn, uint64_t from, size_t first,
                 const mfs_vv *pa, const mfs_vv *pb, const mfs_vv *cur,
                 uint64_t epoch, size_t cap, size_t *len)
{
    *len = 0;
    bool peers = false;
    for (size_t i = 0; pa && i < cur->n && !peers; i++)
        peers = cur->e[i].node != s->node &&
                cur->e[i].seq > peer_from(pa, pb, cur->e[i].node);
    if (from == s->seq && first == s->wal_nfresh && !peers)
        return 0;
    mfs_wbuf b;
    mfs_wbuf_init(&b, s->wal_buf, cap);
    mfs_put_u32(&b, WAL_MAGIC);
    mfs_put_u32(&b, 0); /* crc */
    mfs_put_u64(&b, epoch);
    mfs_put_u32(&b, 0); /* payload length */
    mfs_put_u32(&b, 0); /* chunks */
    uint32_t nch = 0;
    for (size_t i = first; i < s->wal_nfresh && !b.err; i++) {
        const uint8_t *h = s->wal_fresh + i * MFS_HASH_LEN;
        MDB_val v;
        if (tget(s, txn, DB_CHUNKS, h, CHUNKS_KEY_LEN, &v))
            continue; /* its call failed, or collected since */
        size_t n = chunk_val_len(&v);
        if (b.len + MFS_HASH_LEN + 4 + n > cap)
            return 1;
        size_t at = b.len;
        mfs_put_bytes(&b, h, MFS_HASH_LEN);
        mfs_put_u32(&b, (uint32_t)n);
        if (chunk_val_copy(s, &v, s->wal_buf + b.len) != (ssize_t)n)
            return -EIO;
        b.len += n;
        b.len = at + delta(s, txn, s->wal_buf + at, n);
        ring_note(s, h, (uint32_t)n);
        nch++;
    }
    s->wal_own_at = b.len;
    s->wal_own_from = from;
    int rc = b.err ? 1 : put_ops(s, txn, s->node, from, s->seq, &b);
    s->wal_own_len = b.len - s->wal_own_at;
    for (size_t i = 0; peers && !rc && i < cur->n; i++) {
        uint64_t o = cur->e[i].node, f = peer_from(pa, pb, o);
        if (o != s->node && cur->e[i].seq > f)
            rc = put_ops(s, txn, o, f, cur->e[i].seq, &b);
    }
    if (rc)
        return rc;
    mfs_be32_put(s->wal_buf + 16, (uint32_t)(b.len - WAL_HEAD));
    mfs_be32_put(s->wal_buf + 20, nch);
    mfs_be32_put(s->wal_buf + 4, rec_crc(s->wal_buf, b.len));
    *len = b.len;
    return 0;
}

/* What a record with peers' ops holds, for the write concern: the txn's
 * vector and wanted vector (hooks->held), and the gc_gen it covers. */
typedef struct held_snap {
    mfs_vv cur, wanted;
    uint64_t gen;
} held_snap;

/* Under wlock: the record to append (in s->wal_buf, *len bytes, 0: none)
 * and where (*off); moves to the other half when it does not fit. With
 * peers (hs: its snapshot, the caller frees it), every origin's ops not
 * durable yet. 1: the old way. */
static int reserve(mfs_store *s, bool peers, size_t *len, uint64_t *off,
                   held_snap *hs)
{
    uint64_t half = half_size(s->wal_size);
    if (!s->wal_buf && !(s->wal_buf = malloc(half)))
        return -ENOMEM;
    MDB_txn *txn = s->gc_txn, *rtxn = NULL;
    if (!txn) { /* between two groups: the last commit has it all */
        int rc = mdb_to_errno(mdb_txn_begin(s->env, NULL, MDB_RDONLY, &rtxn));
        if (rc)
            return rc;
        txn = rtxn;
    }
    int other = !s->wal_half;
    /* peers' ops: those above what LMDB holds durably and the log has */
    mfs_vv durable = {0};
    int rc = 0;
    if (peers || s->wal_half_peers[other]) {
        rc = store_vv_read(s, txn, &hs->cur);
        pthread_mutex_lock(&s->vvlock);
        if (!rc)
            rc = store_vv_copy(&durable, &s->vv_durable);
        pthread_mutex_unlock(&s->vvlock);
        if (!rc && peers)
            rc = s->hooks->held(s, txn, &hs->wanted);
        hs->gen = s->gc_gen;
    }
    uint64_t end = (uint64_t)(s->wal_half + 1) * half;
    /* the ring as the log has it: a record not made leaves it so */
    uint8_t saved[WAL_RING][MFS_HASH_LEN];
    uint32_t saved_len[WAL_RING];
    unsigned saved_n = s->wal_ring_n;
    memcpy(saved, s->wal_ring, sizeof(saved));
    memcpy(saved_len, s->wal_ring_len, sizeof(saved_len));
    if (!rc)
        rc = build(s, txn, s->wal_seq, s->wal_logged, peers ? &s->wal_vv : NULL,
                   &durable, &hs->cur, s->wal_epoch, (size_t)(end - s->wal_off),
                   len);
    bool with_peers = peers;
    if (rc == 1) {
        /* The other half, in a new epoch (its delta bases only its own).
         * Its records are needed no more once a sync of LMDB covered a
         * commit made after the last of them: asked for when this half
         * began, it has mostly come, and the other half begins with the
         * record that did not fit. Else it begins with everything LMDB
         * has not synced (hundreds of kB: every version op since, each
         * with its file's chunk list; such a record every 40 fsyncs was
         * their p99), peers' ops too if its records held some. */
        bool covered = s->wal_synced_gen >= s->wal_half_gen[other];
        s->wal_ring_n = 0;
        if (!covered)
            with_peers = peers || s->wal_half_peers[other];
        rc = covered ? build(s, txn, s->wal_seq, s->wal_logged,
                             peers ? &s->wal_vv : NULL, &durable, &hs->cur,
                             s->wal_epoch + 1, half, len)
                     : build(s, txn, s->wal_synced_seq, 0,
                             with_peers ? &durable : NULL, NULL, &hs->cur,
                             s->wal_epoch + 1, half, len);
        if (!rc && *len) {
            s->wal_half = other;
            s->wal_off = (uint64_t)other * half;
            s->wal_epoch++;
            s->wal_half_peers[other] = false;
            gc_sync_soon(s); /* covers this half's first records */
        }
    }
    mfs_vv_free(&durable);
    if (rtxn)
        mdb_txn_abort(rtxn);
    if (rc || !*len) {
        memcpy(s->wal_ring, saved, sizeof(saved));
        memcpy(s->wal_ring_len, saved_len, sizeof(saved_len));
        s->wal_ring_n = saved_n;
        return rc;
    }
    *off = s->wal_off;
    s->wal_off += *len;
    s->wal_gen = s->wal_half_gen[s->wal_half] = s->gc_gen;
    if (with_peers)
        s->wal_half_peers[s->wal_half] = true;
    s->wal_covered = false;
    return 0;
}

/* Raises every entry of *dst to src's (0 or -ENOMEM). */
static int vv_raise_all(mfs_vv *dst, const mfs_vv *src)
{
    for (size_t i = 0; i < src->n; i++) {
        size_t j = 0;
        while (j < dst->n && dst->e[j].node != src->e[i].node)
            j++;
        if (j < dst->n) {
            if (dst->e[j].seq < src->e[i].seq)
                dst->e[j].seq = src->e[i].seq;
            continue;
        }
        mfs_vv_entry *e = realloc(dst->e, (dst->n + 1) * sizeof(*e));
        if (!e)
            return -ENOMEM;
        dst->e = e;
        dst->e[dst->n++] = src->e[i];
    }
    return 0;
}

/* One record of what is not durable yet (with peers, every origin's ops)
 * appended and flushed: 0, 1 (the old way: mfs_store_commit(s, 1) or a
 * sync of LMDB), or -errno. With peers, the write concern's snapshot
 * (vv_held_log) is then of it. */
static int append(mfs_store *s, bool peers)
{
    if (!s->wal_on)
        return 1;
    held_snap hs = {0};
    mfs_lock_take(&s->wal_mu, MFS_LOCK_STORE_LOG);
    mfs_lock_take(&s->wlock, MFS_LOCK_STORE_W);
    size_t len = 0;
    uint64_t off = 0;
    int rc = s->wal_fresh_over || s->wal_broken
                 ? 1
                 : reserve(s, peers, &len, &off, &hs);
    if (rc < 0) /* (a chunk unreadable, no memory: the old way is right) */
        rc = 1;
    uint64_t seq = s->seq, lost = s->wal_lost;
    uint64_t logged = s->wal_nfresh + s->wal_dropped;
    mfs_logged_cb cb = !rc && len && !peers ? s->logged_cb : NULL;
    void *cb_arg = s->logged_arg;
    mfs_lock_drop(&s->wlock);
    if (!rc && len) {
        rc = pwrite_all(s->wal_fd, s->wal_buf, len, off);
        /* the write concern's early push: the ops of this record leave
         * for the members now, so that their flush runs beside ours (a
         * kill -9 from here on keeps the record: the page cache has it;
         * a failed commit applies it again, gc_replay) */
        if (!rc && cb && s->wal_own_len)
            cb(cb_arg, s->wal_own_from, seq, s->wal_buf + s->wal_own_at,
               s->wal_own_len);
        if (!rc && fdatasync(s->wal_fd))
            rc = -errno;
    }
    mfs_lock_take(&s->wlock, MFS_LOCK_STORE_W);
    if (rc < 0) {
        mfs_log(LOG_ERR,
                "store %s: cannot write the intent log: %s; until the next "
                "mount, fsync commits the store instead (slower)",
                s->dir, strerror(-rc));
        s->wal_broken = true; /* (a torn record ends its chain) */
        rc = 1;
    } else if (!rc && s->wal_lost != lost) {
        /* a failed commit took ours back: never replayed (a record at a
         * half's start may have landed after wal_lost zeroed it) */
        if (len)
            wal_reset_file(s);
        rc = 1; /* the old way reports that commit's error */
    } else if (!rc) {
        s->wal_written = s->wal_written || len;
        if (s->wal_seq < seq)
            s->wal_seq = seq;
        /* (in the list as it is now: a sync may have dropped some) */
        logged -= s->wal_dropped < logged ? s->wal_dropped : logged;
        if (s->wal_logged < logged)
            s->wal_logged = logged;
        if (peers && vv_raise_all(&s->wal_vv, &hs.cur) == 0) {
            pthread_mutex_lock(&s->vvlock);
            mfs_vv_free(&s->vv_held_log);
            mfs_vv_free(&s->wanted_held_log);
            s->vv_held_log = hs.cur;
            s->wanted_held_log = hs.wanted;
            hs.cur = hs.wanted = (mfs_vv){0};
            s->held_log_gen = hs.gen;
            s->held_log_ok = true;
            pthread_mutex_unlock(&s->vvlock);
        }
    }
    mfs_lock_drop(&s->wlock);
    mfs_lock_drop(&s->wal_mu);
    mfs_vv_free(&hs.cur);
    mfs_vv_free(&hs.wanted);
    return rc;
}

void mfs_store_set_logged_cb(mfs_store *s, mfs_logged_cb cb, void *arg)
{
    mfs_lock_take(&s->wlock, MFS_LOCK_STORE_W);
    s->logged_cb = cb;
    s->logged_arg = arg;
    mfs_lock_drop(&s->wlock);
}

int wal_fsync(mfs_store *s)
{
    return append(s, false);
}

int wal_hold(mfs_store *s)
{
    return append(s, true);
}
