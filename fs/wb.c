/*
 * wb.c - write-behind: a WRITE is answered once its bytes are copied here,
 * and one thread applies the writes to the store, in the order they came.
 *
 * Without the kernel's writeback cache (docs/FS.md, "Caching") every
 * write(2) waits for its WRITE's reply, and the store's work on a large
 * write (cutting and naming its chunks, storing them) is most of that
 * wait: the writer and the store took turns. Here the kernel copies the
 * next write while the store applies the last one, as a local disk's page
 * cache lets a writer run ahead of the disk.
 *
 * What every other request sees is unchanged: each request other than a
 * WRITE first waits until every write queued before it is applied
 * (mfs_fs_wb_wait), so a read, a stat, a close, an fsync or a rename sees
 * the store as if the writes had been applied when they were answered. A
 * write that fails when applied is remembered for its inode and returned
 * by the next write, flush (close) or fsync of it, as a local file
 * system reports a failed writeback; flush and fsync clear it. Writes go
 * the direct way (applied before the reply) when the store's file system
 * has less than MFS_FS_WB_FREE_MIN free (so a full disk fails the write
 * itself), for offsets past the largest file, and while the thread cannot
 * run. A kill -9 loses what is queued (at most MFS_FS_WB_BYTES, a few
 * milliseconds of writes), as it loses anything not closed or fsync'd
 * (docs/FS.md, "What a crash loses").
 */
#include "fs.h"

#include "log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>

struct mfs_fs_wb_item {
    struct mfs_fs_wb_item *next;
    uint64_t ino, off, seq;
    uint64_t t0; /* CLOCK_MONOTONIC ns when queued */
    size_t len, cap;
    unsigned flags;
    int prepped;          /* prepared when queued (then never joined) */
    mfs_write_prep *prep; /* (may be NULL when prepped) */
    uint8_t data[];
};

#define WB_BIG_CAP                                                             \
    (1u << 20) /* buffers of a 1 MiB WRITE are kept for reuse                  \
                */
#define WB_SMALL_CAP (64u << 10)
/* Writes this large are prepared as they are queued (cut and hashed on
 * the FUSE thread, the hash helper taking half); smaller ones join the
 * last queued write of the file while they continue it, up to a MiB, and
 * the thread prepares what they make */
#define WB_PREP_MIN (512u << 10)
#define WB_POOL 12                   /* big buffers kept */
#define WB_FREE_CHECK_NS 50000000ull /* free space is read again after */
/* The thread leaves the last queued write this long while writes may
 * still join it (a run of small or medium writes), unless it is full; a
 * request that waits for it applies it itself */
#define WB_JOIN_NS 1000000ull

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void err_note(mfs_fs_wb *wb, uint64_t ino, int err)
{
    for (size_t i = 0; i < wb->nerr; i++)
        if (wb->errs[i].ino == ino) {
            wb->errs[i].err = err; /* (the latest) */
            return;
        }
    if (wb->nerr ==
        MFS_FS_WB_ERRS) { /* full: the oldest goes to the log only */
        memmove(wb->errs, wb->errs + 1, sizeof(wb->errs[0]) * (wb->nerr - 1));
        wb->nerr--;
        wb->errs_lost++;
    }
    wb->errs[wb->nerr].ino = ino;
    wb->errs[wb->nerr++].err = err;
}

static void item_free(mfs_fs_wb *wb, struct mfs_fs_wb_item *it)
{
    if (it->cap == WB_BIG_CAP && wb->npool < WB_POOL) {
        it->next = wb->pool;
        wb->pool = it;
        wb->npool++;
        return;
    }
    free(it);
}

/* Applies the head of the queue (lock held, not while applying). One
 * item at a time is applied (busy), by the thread or by a request that
 * waits for it (mfs_fs_wb_wait), so items are applied in order. */
static void apply_head(mfs_fs_wb *wb)
{
    struct mfs_fs_wb_item *it = wb->head;
    wb->head = it->next;
    if (!wb->head)
        wb->tail = NULL;
    wb->busy = it; /* (no longer joined by a write) */
    pthread_mutex_unlock(&wb->lock);
    ssize_t n =
        it->prepped
            ? mfs_store_write_apply(wb->store, it->prep, it->ino, it->off,
                                    it->data, it->len, it->flags)
            : mfs_store_write_flags(wb->store, it->ino, it->off, it->data,
                                    it->len, it->flags);
    if (n >= 0 && (size_t)n != it->len)
        n = -EIO; /* (the store writes all or fails) */
    pthread_mutex_lock(&wb->lock);
    if (n < 0) {
        mfs_log(LOG_WARNING,
                "fs: a write of %zu bytes at %llu to inode %llu failed "
                "after it was answered: %s; the next write, close or "
                "fsync of the file reports it",
                it->len, (unsigned long long)it->off,
                (unsigned long long)it->ino, strerror((int)-n));
        err_note(wb, it->ino, (int)-n);
        wb->failed++;
    }
    wb->busy = NULL;
    wb->applied = it->seq;
    wb->bytes -= it->len;
    __atomic_sub_fetch(&wb->items, 1, __ATOMIC_RELEASE);
    item_free(wb, it);
    pthread_cond_broadcast(&wb->done);
    if (wb->head || wb->stop)
        pthread_cond_signal(&wb->work); /* (a helper leaves the rest) */
}

static void *wb_main(void *arg)
{
    mfs_fs_wb *wb = arg;
    pthread_setname_np(pthread_self(), "mfs-write"); /* top, perf */
    mfs_fs_signals_block();
    pthread_mutex_lock(&wb->lock);
    for (;;) {
        while ((!wb->head || wb->busy) && !(wb->stop && !wb->busy))
            pthread_cond_wait(&wb->work, &wb->lock);
        if (!wb->head)
            break; /* stopped, nothing left */
        struct mfs_fs_wb_item *h = wb->head;
        uint64_t now = mono_ns();
        if (!wb->stop && h == wb->tail && !h->prepped && h->len < h->cap &&
            now < h->t0 + WB_JOIN_NS) {
            uint64_t due = h->t0 + WB_JOIN_NS;
            struct timespec ts = {(time_t)(due / 1000000000u),
                                  (long)(due % 1000000000u)};
            pthread_cond_timedwait(&wb->work, &wb->lock, &ts);
            continue;
        }
        apply_head(wb);
    }
    pthread_mutex_unlock(&wb->lock);
    return NULL;
}

int mfs_fs_wb_init(mfs_fs_wb *wb, mfs_store *store)
{
    memset(wb, 0, sizeof *wb);
    wb->store = store;
    const char *e = getenv("MESHFS_WB_FREE_MIN"); /* (tests: a small disk) */
    char *end;
    wb->free_min = e && *e ? strtoull(e, &end, 10) : MFS_FS_WB_FREE_MIN;
    if (e && *e && *end)
        wb->free_min = MFS_FS_WB_FREE_MIN;
    pthread_mutex_init(&wb->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&wb->work, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&wb->done, NULL);
    return 0;
}

int mfs_fs_wb_start(mfs_fs_wb *wb)
{
    if (pthread_create(&wb->thread, NULL, wb_main, wb) != 0)
        return -EAGAIN;
    __atomic_store_n(&wb->started, 1, __ATOMIC_RELEASE);
    return 0;
}

void mfs_fs_wb_stop(mfs_fs_wb *wb)
{
    if (!wb->started)
        return;
    pthread_mutex_lock(&wb->lock);
    wb->stop = 1; /* (the thread applies what is queued, then ends) */
    pthread_cond_signal(&wb->work);
    pthread_mutex_unlock(&wb->lock);
    pthread_join(wb->thread, NULL);
    __atomic_store_n(&wb->started, 0, __ATOMIC_RELEASE);
}

void mfs_fs_wb_close(mfs_fs_wb *wb)
{
    mfs_fs_wb_stop(wb);
    while (wb->pool) {
        struct mfs_fs_wb_item *it = wb->pool;
        wb->pool = it->next;
        free(it);
    }
    pthread_mutex_destroy(&wb->lock);
    pthread_cond_destroy(&wb->work);
    pthread_cond_destroy(&wb->done);
}

void mfs_fs_wb_wait(mfs_fs_wb *wb)
{
    if (__atomic_load_n(&wb->items, __ATOMIC_ACQUIRE) == 0)
        return;
    pthread_mutex_lock(&wb->lock);
    uint64_t upto = wb->queued; /* what came before us, not what comes after */
    while (wb->applied < upto) {
        /* rather than wait for the thread to wake (0.05-0.15 ms in a
         * virtual machine: an fsync right after a small write paid it),
         * apply the next one here */
        if (wb->head && !wb->busy)
            apply_head(wb);
        else
            pthread_cond_wait(&wb->done, &wb->lock);
    }
    pthread_mutex_unlock(&wb->lock);
}

void mfs_fs_wb_counts(mfs_fs_wb *wb, uint64_t *answered, uint64_t *failed)
{
    pthread_mutex_lock(&wb->lock);
    *answered = wb->answered + wb->joined;
    *failed = wb->failed;
    pthread_mutex_unlock(&wb->lock);
}

void mfs_fs_wb_before(mfs_fs_wb *wb)
{
    __atomic_store_n(&wb->last_ino, 0, __ATOMIC_RELAXED);
    mfs_fs_wb_wait(wb);
}

void mfs_fs_wb_fail(mfs_fs_wb *wb, uint64_t ino, int err)
{
    pthread_mutex_lock(&wb->lock);
    err_note(wb, ino, err);
    __atomic_store_n(&wb->nerr, wb->nerr, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&wb->lock);
}

int mfs_fs_wb_error(mfs_fs_wb *wb, uint64_t ino, int clear)
{
    int err = 0;
    if (__atomic_load_n(&wb->nerr, __ATOMIC_ACQUIRE) == 0)
        return 0;
    pthread_mutex_lock(&wb->lock);
    for (size_t i = 0; i < wb->nerr; i++)
        if (wb->errs[i].ino == ino) {
            err = -wb->errs[i].err;
            if (clear) {
                wb->errs[i] = wb->errs[--wb->nerr];
            }
            break;
        }
    pthread_mutex_unlock(&wb->lock);
    return err;
}

/* May writes be answered before they are applied? (lock held) */
static bool room_on_disk(mfs_fs_wb *wb)
{
    uint64_t now = mono_ns();
    if (now - wb->free_checked >= WB_FREE_CHECK_NS || !wb->free_checked) {
        struct statvfs sv;
        wb->free_ok = mfs_store_statfs(wb->store, &sv) == 0 &&
                      (uint64_t)sv.f_bavail * sv.f_frsize >= wb->free_min;
        wb->free_checked = now ? now : 1;
    }
    return wb->free_ok;
}

int mfs_fs_wb_write(mfs_fs_wb *wb, uint64_t ino, uint64_t off, const void *buf,
                    size_t len, unsigned flags)
{
    if (!__atomic_load_n(&wb->started, __ATOMIC_ACQUIRE) || len == 0 ||
        len > WB_BIG_CAP || off + len > MFS_MAX_FILE_SIZE)
        return 1;
    /* a small write when nothing is queued is applied at once, unless it
     * continues the last write of its file (a run of small writes: dd
     * bs=4k, stdio): queued, a lone one made the close or fsync that
     * often follows it wait for the hand-over between threads (fsync p50
     * +20-30 us, bench/fs/ab.sh fsync) */
    uint64_t li = __atomic_exchange_n(&wb->last_ino, ino, __ATOMIC_RELAXED);
    uint64_t le =
        __atomic_exchange_n(&wb->last_end, off + len, __ATOMIC_RELAXED);
    if (len <= WB_SMALL_CAP && !(li == ino && le == off) &&
        __atomic_load_n(&wb->items, __ATOMIC_ACQUIRE) == 0)
        return 1;
    pthread_mutex_lock(&wb->lock);
    if (wb->stop || !room_on_disk(wb)) {
        pthread_mutex_unlock(&wb->lock);
        return 1;
    }
    /* a write that continues the last one queued joins it */
    struct mfs_fs_wb_item *t = wb->tail;
    if (t && !t->prepped && t->ino == ino && t->flags == flags &&
        t->off + t->len == off && t->cap - t->len >= len) {
        memcpy(t->data + t->len, buf, len);
        t->len += len;
        wb->bytes += len;
        wb->joined++;
        pthread_mutex_unlock(&wb->lock);
        return 0;
    }
    /* room: the thread applies what is queued before more comes */
    while (!wb->stop && (wb->bytes + len > MFS_FS_WB_BYTES ||
                         wb->items >= MFS_FS_WB_ITEMS)) {
        wb->full++;
        pthread_cond_wait(&wb->done, &wb->lock);
    }
    struct mfs_fs_wb_item *it = NULL;
    if (len > WB_SMALL_CAP && wb->pool) {
        it = wb->pool;
        wb->pool = it->next;
        wb->npool--;
    }
    /* A large write is prepared here (its chunks cut and hashed) while the
     * thread applies the last one, unless an earlier write of the file
     * waits to be prepared by the thread (the store prepares a file's
     * writes in order) */
    bool prep = len >= WB_PREP_MIN &&
                (!wb->busy || wb->busy->ino != ino || wb->busy->prepped);
    for (struct mfs_fs_wb_item *q = wb->head; q && prep; q = q->next)
        prep = q->ino != ino || q->prepped;
    pthread_mutex_unlock(&wb->lock);
    size_t cap = len > WB_SMALL_CAP ? WB_BIG_CAP : WB_SMALL_CAP;
    if (!it && !(it = malloc(sizeof(*it) + cap)))
        return 1; /* (applied the direct way) */
    it->cap = cap;
    it->t0 = mono_ns();
    it->ino = ino;
    it->off = off;
    it->len = len;
    it->flags = flags;
    it->next = NULL;
    memcpy(it->data, buf, len);
    it->prepped = prep;
    it->prep = prep
                   ? mfs_store_write_prepare(wb->store, ino, off, it->data, len)
                   : NULL;
    pthread_mutex_lock(&wb->lock);
    if (wb->stop) { /* (the caller writes it: its plan must go first) */
        pthread_mutex_unlock(&wb->lock);
        mfs_store_write_apply(wb->store, it->prep, ino, off, it->data, 0, 0);
        pthread_mutex_lock(&wb->lock);
        item_free(wb, it);
        pthread_mutex_unlock(&wb->lock);
        return 1;
    }
    it->seq = ++wb->queued;
    if (wb->tail)
        wb->tail->next = it;
    else
        wb->head = it;
    wb->tail = it;
    wb->bytes += len;
    __atomic_store_n(&wb->items, wb->items + 1, __ATOMIC_RELEASE);
    wb->answered++;
    pthread_cond_signal(&wb->work);
    pthread_mutex_unlock(&wb->lock);
    return 0;
}
