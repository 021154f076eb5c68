/*
 * inval.c - the queue between the store's change callback and the thread
 * that tells the kernel to drop cached entries, attributes and pages.
 *
 * The callback runs on whatever thread applied a change (the sync thread;
 * possibly a FUSE worker). A fuse_lowlevel_notify_* call made there can
 * deadlock (the kernel may wait for a request that this very thread would
 * have to answer), so the callback only queues and a dedicated thread
 * sends. The queue also keeps a ring of the latest changes with sequence
 * numbers: a handler that built a reply while a change of the same object
 * landed queues the change again (the kernel may cache the reply after the
 * first invalidation went by), and retries wait here until they are due.
 * This file must never call into FUSE or the store.
 */
#include "fs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int mfs_fs_invalq_init(mfs_fs_invalq *q)
{
    memset(q, 0, sizeof *q);
    pthread_mutex_init(&q->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cond, &ca);
    pthread_condattr_destroy(&ca);
    return 0;
}

static void free_list(mfs_fs_inval_item *it)
{
    while (it) {
        mfs_fs_inval_item *next = it->next;
        free(it);
        it = next;
    }
}

void mfs_fs_invalq_close(mfs_fs_invalq *q)
{
    free_list(q->head);
    free_list(q->later);
    q->head = q->tail = q->later = NULL;
    memset(q->slot, 0, sizeof q->slot);
    q->len = 0;
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->cond);
}

static uint64_t name_hash(const char *name)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 0x100000001b3ULL;
    return h;
}

static uint64_t item_hash(int kind, uint64_t ino, const char *name)
{
    uint64_t h = name_hash(name) ^ (ino * 0x9e3779b97f4a7c15ULL);
    return (h ^ (uint64_t)kind) * 0xff51afd7ed558ccdULL;
}

static mfs_fs_inval_item **slot_of(mfs_fs_invalq *q, uint64_t h)
{
    return &q->slot[(h >> 40) % MFS_FS_INVALQ_SLOTS];
}

/* The queued item of this change, or NULL. Caller holds the lock. */
static mfs_fs_inval_item *queued(mfs_fs_invalq *q, uint64_t h, int kind,
                                 uint64_t ino, const char *name)
{
    mfs_fs_inval_item *it = *slot_of(q, h);
    while (it && !(it->hash == h && it->kind == kind && it->ino == ino &&
                   !strcmp(it->name, name)))
        it = it->hnext;
    return it;
}

static int push(mfs_fs_invalq *q, int kind, uint64_t ino, const char *name,
                int raced)
{
    if (!name)
        name = "";
    uint64_t h = item_hash(kind, ino, name);
    pthread_mutex_lock(&q->lock);
    if (!raced) {
        /* every change, even one merged below, is in the ring */
        q->seq++;
        size_t i = q->seq % MFS_FS_CHG_RING;
        q->ring[i].seq = q->seq;
        q->ring[i].ino = ino;
        q->ring[i].kind = kind;
    }
    if (q->stop) {
        pthread_mutex_unlock(&q->lock);
        return -ENOBUFS;
    }
    mfs_fs_inval_item *it = queued(q, h, kind, ino, name);
    if (it) {
        /* not sent yet: its send comes after this change */
        it->raced |= raced;
        q->merged++;
        pthread_mutex_unlock(&q->lock);
        return 0;
    }
    size_t n = strlen(name);
    it = malloc(sizeof *it + n + 1);
    if (!it) {
        q->dropped++;
        pthread_mutex_unlock(&q->lock);
        return -ENOMEM;
    }
    it->next = NULL;
    it->hash = h;
    it->kind = kind;
    it->raced = raced;
    it->tries = 0;
    it->due_ns = 0;
    it->ino = ino;
    memcpy(it->name, name, n + 1);
    mfs_fs_inval_item **sl = slot_of(q, h);
    it->hnext = *sl;
    *sl = it;
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    if (++q->len > q->peak)
        q->peak = q->len;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
    return 0;
}

int mfs_fs_invalq_push(mfs_fs_invalq *q, int kind, uint64_t ino,
                       const char *name)
{
    return push(q, kind, ino, name, 0);
}

int mfs_fs_invalq_push_raced(mfs_fs_invalq *q, int kind, uint64_t ino,
                             const char *name)
{
    return push(q, kind, ino, name, 1);
}

void mfs_fs_invalq_requeue(mfs_fs_invalq *q, mfs_fs_inval_item *it)
{
    pthread_mutex_lock(&q->lock);
    if (q->stop) {
        pthread_mutex_unlock(&q->lock);
        free(it);
        return;
    }
    it->next = q->later;
    q->later = it;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

mfs_fs_inval_item *mfs_fs_invalq_pop(mfs_fs_invalq *q)
{
    mfs_fs_inval_item *it = NULL;
    pthread_mutex_lock(&q->lock);
    while (!q->stop) {
        if (q->head) {
            it = q->head;
            q->head = it->next;
            if (!q->head)
                q->tail = NULL;
            q->len--;
            mfs_fs_inval_item **pp = slot_of(q, it->hash);
            while (*pp != it)
                pp = &(*pp)->hnext;
            *pp = it->hnext; /* a change from now on is queued anew */
            break;
        }
        uint64_t now = mono_ns(), first = UINT64_MAX;
        for (mfs_fs_inval_item **pp = &q->later; *pp; pp = &(*pp)->next) {
            if ((*pp)->due_ns <= now) {
                it = *pp;
                *pp = it->next;
                break;
            }
            if ((*pp)->due_ns < first)
                first = (*pp)->due_ns;
        }
        if (it)
            break;
        if (first == UINT64_MAX) {
            pthread_cond_wait(&q->cond, &q->lock);
        } else {
            struct timespec ts = {(time_t)(first / 1000000000u),
                                  (long)(first % 1000000000u)};
            pthread_cond_timedwait(&q->cond, &q->lock, &ts);
        }
    }
    if (it)
        it->next = NULL;
    pthread_mutex_unlock(&q->lock);
    return it;
}

void mfs_fs_invalq_stop(mfs_fs_invalq *q)
{
    pthread_mutex_lock(&q->lock);
    q->stop = 1;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->lock);
}

uint64_t mfs_fs_invalq_seq(mfs_fs_invalq *q)
{
    pthread_mutex_lock(&q->lock);
    uint64_t s = q->seq;
    pthread_mutex_unlock(&q->lock);
    return s;
}

int mfs_fs_invalq_changed(mfs_fs_invalq *q, uint64_t since, int kind,
                          uint64_t ino)
{
    int yes = 0;
    pthread_mutex_lock(&q->lock);
    if (q->seq - since >= MFS_FS_CHG_RING) {
        yes = q->seq != since; /* the ring no longer reaches back */
    } else {
        for (uint64_t s = since + 1; s <= q->seq && !yes; s++) {
            size_t i = s % MFS_FS_CHG_RING;
            int k = q->ring[i].kind;
            yes = q->ring[i].ino == ino &&
                  (k == kind || (kind == MFS_CHANGE_INODE &&
                                 k == MFS_CHANGE_ATTR)); /* attrs too */
        }
    }
    pthread_mutex_unlock(&q->lock);
    return yes;
}

void mfs_fs_invalq_negative(mfs_fs_invalq *q, uint64_t parent, const char *name)
{
    uint64_t h = name_hash(name), now = mono_ns();
    pthread_mutex_lock(&q->lock);
    size_t i = q->neg_next++ % MFS_FS_NEG_RING;
    q->neg[i].parent = parent;
    q->neg[i].hash = h;
    q->neg[i].t_ns = now;
    pthread_mutex_unlock(&q->lock);
}

int mfs_fs_invalq_negative_recent(mfs_fs_invalq *q, uint64_t parent,
                                  const char *name, uint64_t window_ns)
{
    uint64_t h = name_hash(name), now = mono_ns();
    int yes = 0;
    pthread_mutex_lock(&q->lock);
    for (size_t i = 0; i < MFS_FS_NEG_RING && !yes; i++)
        yes = q->neg[i].t_ns && q->neg[i].parent == parent &&
              q->neg[i].hash == h && now - q->neg[i].t_ns < window_ns;
    pthread_mutex_unlock(&q->lock);
    return yes;
}
