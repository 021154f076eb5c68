/*
 * files.c - open files, the content version each one pins, and what the
 * kernel's page cache of each inode holds.
 *
 * An open file reads one whole version (DESIGN P5): a handle pins the
 * version current when it was opened and reads it until it is closed
 * (mfs_store_read_pinned), however many remote versions land meanwhile.
 * The kernel keeps one page cache per inode, shared by every open, so this
 * table also decides per open how the kernel may use that cache:
 *   - while cached handles of the inode are pinned to an older version
 *     (they refill the cache with it), a new open bypasses the cache
 *     (FOPEN_DIRECT_IO); when the last such handle closes the caller drops
 *     the inode's cache;
 *   - otherwise the open keeps the cache (FOPEN_KEEP_CACHE) only when the
 *     cache holds the version the open pins: the version of the previous
 *     cached open, or a version made on this node since (local writes go
 *     through the cache) with no remote change in between.
 * docs/FS.md ("One version per open") gives the reasoning. A hash table of
 * inodes under one mutex; it never calls into FUSE or the store.
 */
#include "fs.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static bool stamp_same(mfs_stamp a, mfs_stamp b)
{
    return a.hlc == b.hlc && a.node == b.node;
}

int mfs_fs_files_init(mfs_fs_files *t)
{
    memset(t, 0, sizeof *t);
    t->nb = 256;
    t->buckets = calloc(t->nb, sizeof *t->buckets);
    if (!t->buckets)
        return -ENOMEM;
    pthread_mutex_init(&t->lock, NULL);
    return 0;
}

void mfs_fs_files_close(mfs_fs_files *t)
{
    if (!t->buckets)
        return;
    for (size_t i = 0; i < t->nb; i++) {
        mfs_fs_file *f = t->buckets[i];
        while (f) {
            mfs_fs_file *next = f->next;
            free(f); /* handles belong to the kernel's open files */
            f = next;
        }
    }
    free(t->buckets);
    t->buckets = NULL;
    pthread_mutex_destroy(&t->lock);
}

/* The inode's record, or NULL. Caller holds the lock. */
static mfs_fs_file *find(mfs_fs_files *t, uint64_t ino)
{
    mfs_fs_file *f = t->buckets[mfs_fs_ino_slot(ino, t->nb)];
    while (f && f->ino != ino)
        f = f->next;
    return f;
}

static void grow(mfs_fs_files *t)
{
    size_t nb = t->nb * 2;
    mfs_fs_file **b = calloc(nb, sizeof *b);
    if (!b)
        return; /* longer chains; still correct */
    for (size_t i = 0; i < t->nb; i++) {
        mfs_fs_file *f = t->buckets[i];
        while (f) {
            mfs_fs_file *next = f->next;
            size_t j = mfs_fs_ino_slot(f->ino, nb);
            f->next = b[j];
            b[j] = f;
            f = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nb = nb;
}

/* The inode's record, made if missing; NULL without memory. Caller holds
 * the lock. */
static mfs_fs_file *get(mfs_fs_files *t, uint64_t ino)
{
    mfs_fs_file *f = find(t, ino);
    if (f)
        return f;
    f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->ino = ino;
    if (t->n + 1 > t->nb * 2)
        grow(t);
    size_t i = mfs_fs_ino_slot(ino, t->nb);
    f->next = t->buckets[i];
    t->buckets[i] = f;
    t->n++;
    return f;
}

/* Is h a cached handle whose pin is older than cur, so that its reads
 * refill the page cache with a version a new open must not see? A handle
 * behind a version made on this node is not: its next read moves its pin
 * there (local writes are seen at once). */
static bool stale(const mfs_fs_fh *h, mfs_stamp cur, uint64_t self)
{
    return !h->direct && !stamp_same(h->pin, cur) && cur.node != self;
}

int mfs_fs_files_open(mfs_fs_files *t, mfs_fs_fh *fh, uint64_t self,
                      int *keep_cache)
{
    *keep_cache = 0;
    pthread_mutex_lock(&t->lock);
    mfs_fs_file *f = get(t, fh->ino);
    if (!f) {
        pthread_mutex_unlock(&t->lock);
        return -ENOMEM;
    }
    bool any_stale = false;
    for (mfs_fs_fh *h = f->handles; h && !any_stale; h = h->next)
        any_stale = stale(h, fh->pin, self);
    if (any_stale) {
        /* their reads refill the shared cache with their version */
        fh->direct = 1;
        f->cache_ok = 0;
    } else if (!fh->direct) {
        *keep_cache = f->cache_ok &&
                      (stamp_same(f->cache_ver, fh->pin) ||
                       (fh->pin.node == self && f->cache_gen == f->remote_gen));
        f->cache_ver = fh->pin;
        f->cache_gen = f->remote_gen;
        f->cache_ok = 1;
    }
    fh->next = f->handles;
    f->handles = fh;
    pthread_mutex_unlock(&t->lock);
    return 0;
}

int mfs_fs_files_release(mfs_fs_files *t, mfs_fs_fh *fh, mfs_stamp cur,
                         uint64_t self)
{
    int drop = 0;
    pthread_mutex_lock(&t->lock);
    mfs_fs_file *f = find(t, fh->ino);
    if (f) {
        mfs_fs_fh **pp = &f->handles;
        while (*pp && *pp != fh)
            pp = &(*pp)->next;
        if (*pp)
            *pp = fh->next;
        if (stale(fh, cur, self)) {
            /* it may have refilled the cache with its version */
            f->cache_ok = 0;
            drop = 1;
            for (mfs_fs_fh *h = f->handles; h && drop; h = h->next)
                if (stale(h, cur, self))
                    drop = 0; /* the last one to close drops the cache */
        }
    }
    pthread_mutex_unlock(&t->lock);
    return drop;
}

mfs_stamp mfs_fs_files_pin_get(mfs_fs_files *t, const mfs_fs_fh *fh)
{
    pthread_mutex_lock(&t->lock);
    mfs_stamp p = fh->pin;
    pthread_mutex_unlock(&t->lock);
    return p;
}

void mfs_fs_files_pin_set(mfs_fs_files *t, mfs_fs_fh *fh, mfs_stamp pin)
{
    pthread_mutex_lock(&t->lock);
    fh->pin = pin;
    pthread_mutex_unlock(&t->lock);
}

void mfs_fs_files_remote(mfs_fs_files *t, uint64_t ino)
{
    pthread_mutex_lock(&t->lock);
    mfs_fs_file *f = find(t, ino);
    if (f)
        f->remote_gen++;
    pthread_mutex_unlock(&t->lock);
}

void mfs_fs_files_forget(mfs_fs_files *t, uint64_t ino)
{
    pthread_mutex_lock(&t->lock);
    mfs_fs_file **pp = &t->buckets[mfs_fs_ino_slot(ino, t->nb)];
    while (*pp && (*pp)->ino != ino)
        pp = &(*pp)->next;
    mfs_fs_file *f = *pp;
    if (f && !f->handles) { /* the kernel forgets no inode it has open */
        *pp = f->next;
        free(f);
        t->n--;
    }
    pthread_mutex_unlock(&t->lock);
}
