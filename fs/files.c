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
 *
 * It also holds the handle table behind every fi->fh (fs.h): slots with a
 * free list, and the handles adopted for values a dead daemon handed out.
 * A lookup must never trust a value it did not check: the kernel resends
 * whatever the previous process gave it.
 */
#include "fs.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static bool stamp_same(mfs_stamp a, mfs_stamp b)
{
    return a.hlc == b.hlc && a.node == b.node;
}

/* 32 bits that differ between processes: from getrandom, or (it failed:
 * a kernel without it, or an entropy pool not yet ready at boot) from the
 * clock and the pid, which differ between a daemon and its successor. */
static uint32_t boot_bits(void)
{
    uint32_t b;
    if (getrandom(&b, sizeof b, GRND_NONBLOCK) == (ssize_t)sizeof b)
        return b;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    x ^= (uint64_t)getpid() << 40;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return (uint32_t)x;
}

int mfs_fs_files_init(mfs_fs_files *t)
{
    memset(t, 0, sizeof *t);
    t->nb = 256;
    t->buckets = calloc(t->nb, sizeof *t->buckets);
    if (!t->buckets)
        return -ENOMEM;
    pthread_mutex_init(&t->lock, NULL);
    pthread_mutex_init(&t->hlock, NULL);
    t->boot = boot_bits();
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
    /* the handles themselves belong to the kernel's open files, as above */
    free(t->slots);
    free(t->amap);
    t->slots = NULL;
    t->amap = NULL;
    pthread_mutex_destroy(&t->lock);
    pthread_mutex_destroy(&t->hlock);
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
    if (fh->adopted) {
        /* the kernel's flags for this open are the dead daemon's: count
         * it as cached (its reads may refill the cache), and the cache as
         * holding whatever that daemon's opens read */
        fh->direct = 0;
        f->cache_ok = 0;
    } else if (any_stale) {
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

/* ---- the handle table ------------------------------------------------- */

#define H_SLOTS_MIN 64u
#define H_AMAP_MIN 64u
#define H_SLOTS_MAX UINT32_MAX /* slot + 1 must fit the low 32 bits */

static uint64_t h_value(const mfs_fs_files *t, uint32_t slot)
{
    const mfs_fs_hslot *s = &t->slots[slot];
    return (uint64_t)(t->boot ^ s->gen) << 32 | ((uint64_t)slot + 1);
}

/* The live handle of this process fh names, or NULL. A value of another
 * process resolves only when its tag equals this process's tag of a live
 * slot of the same kind and inode: boot ^ gen is a 32-bit value that,
 * with the two boots drawn independently, matches with probability 2^-32
 * per stale value, whatever the generations. Caller holds hlock. */
static mfs_fs_hslot *h_live(mfs_fs_files *t, uint64_t fh, int kind,
                            uint64_t ino)
{
    uint32_t lo = (uint32_t)fh;
    if (lo == 0 || lo > t->nslots)
        return NULL;
    mfs_fs_hslot *s = &t->slots[lo - 1];
    if (!s->obj || s->stale || s->kind != kind || s->ino != ino ||
        h_value(t, lo - 1) != fh)
        return NULL;
    return s;
}

/* Where the adopted slot for stale value fh (of kind and ino) sits in
 * amap, or -1. Caller holds hlock. */
static int64_t h_amap_find(mfs_fs_files *t, uint64_t fh, int kind, uint64_t ino)
{
    if (!t->namap)
        return -1;
    size_t mask = t->namap - 1;
    for (size_t i = mfs_fs_ino_slot(fh, t->namap);; i = (i + 1) & mask) {
        uint32_t a = t->amap[i];
        if (!a)
            return -1;
        const mfs_fs_hslot *s = &t->slots[a - 1];
        if (s->stale == fh && s->kind == kind && s->ino == ino)
            return (int64_t)i;
    }
}

static void h_amap_put(uint32_t *amap, size_t n, const mfs_fs_hslot *slots,
                       uint32_t slot)
{
    size_t i = mfs_fs_ino_slot(slots[slot].stale, n);
    while (amap[i])
        i = (i + 1) & (n - 1);
    amap[i] = slot + 1;
}

/* Room for one more adopted slot (the map stays at most half full, so a
 * probe ends soon). 0 or -ENOMEM. Caller holds hlock. */
static int h_amap_room(mfs_fs_files *t)
{
    if ((size_t)(t->nadopt + 1) * 2 <= t->namap)
        return 0;
    size_t n = t->namap ? (size_t)t->namap * 2 : H_AMAP_MIN;
    if (n > (size_t)1 << 31) /* namap is 32 bits */
        return -ENOMEM;
    uint32_t *m = calloc(n, sizeof *m);
    if (!m)
        return -ENOMEM;
    for (size_t i = 0; i < t->namap; i++)
        if (t->amap[i])
            h_amap_put(m, n, t->slots, t->amap[i] - 1);
    free(t->amap);
    t->amap = m;
    t->namap = (uint32_t)n;
    return 0;
}

/* Removes amap[i], shifting back the entries after it that probed past
 * it (no tombstones). Caller holds hlock. */
static void h_amap_del(mfs_fs_files *t, size_t i)
{
    size_t mask = t->namap - 1;
    for (size_t j = (i + 1) & mask; t->amap[j]; j = (j + 1) & mask) {
        size_t home = mfs_fs_ino_slot(t->slots[t->amap[j] - 1].stale, t->namap);
        /* j may move to i when its home is not in (i, j] (cyclically) */
        bool between =
            i < j ? (home > i && home <= j) : (home > i || home <= j);
        if (!between) {
            t->amap[i] = t->amap[j];
            i = j;
        }
    }
    t->amap[i] = 0;
    t->nadopt--;
}

/* A free slot, taken off the free list (the table grows when there is
 * none), or -ENOMEM / -ENFILE. Caller holds hlock. */
static int64_t h_take(mfs_fs_files *t)
{
    if (!t->free1) {
        size_t n = t->nslots ? (size_t)t->nslots * 2 : H_SLOTS_MIN;
        if (n > H_SLOTS_MAX)
            n = H_SLOTS_MAX;
        if (n <= t->nslots)
            return -ENFILE;
        mfs_fs_hslot *s = realloc(t->slots, n * sizeof *s);
        if (!s)
            return -ENOMEM;
        memset(s + t->nslots, 0, (n - t->nslots) * sizeof *s);
        /* thread the new slots onto the free list, lowest first */
        for (size_t i = n; i-- > t->nslots;) {
            s[i].next = t->free1;
            t->free1 = (uint32_t)i + 1;
        }
        t->slots = s;
        t->nslots = (uint32_t)n;
    }
    uint32_t slot = t->free1 - 1;
    mfs_fs_hslot *s = &t->slots[slot];
    assert(!s->obj);
    t->free1 = s->next;
    s->next = 0;
    t->live++;
    return slot;
}

/* Frees slot s: its generation moves on, so the value it had never
 * resolves again (until 2^32 reuses of this one slot). Caller holds
 * hlock. */
static void h_give(mfs_fs_files *t, mfs_fs_hslot *s)
{
    assert(s->obj && t->live > 0);
    s->obj = NULL;
    s->stale = 0;
    s->gen++;
    s->next = t->free1;
    t->free1 = (uint32_t)(s - t->slots) + 1;
    t->live--;
}

int mfs_fs_handles_add(mfs_fs_files *t, int kind, uint64_t ino, void *obj,
                       uint64_t *fh)
{
    assert(obj);
    pthread_mutex_lock(&t->hlock);
    int64_t slot = h_take(t);
    if (slot >= 0) {
        mfs_fs_hslot *s = &t->slots[slot];
        s->obj = obj;
        s->ino = ino;
        s->kind = kind;
        *fh = h_value(t, (uint32_t)slot);
    }
    pthread_mutex_unlock(&t->hlock);
    return slot < 0 ? (int)slot : 0;
}

void *mfs_fs_handles_get(mfs_fs_files *t, uint64_t fh, int kind, uint64_t ino)
{
    if (!fh)
        return NULL;
    void *obj = NULL;
    pthread_mutex_lock(&t->hlock);
    mfs_fs_hslot *s = h_live(t, fh, kind, ino);
    if (s) {
        obj = s->obj;
    } else {
        int64_t i = h_amap_find(t, fh, kind, ino);
        if (i >= 0)
            obj = t->slots[t->amap[i] - 1].obj;
    }
    pthread_mutex_unlock(&t->hlock);
    return obj;
}

void *mfs_fs_handles_adopt(mfs_fs_files *t, uint64_t fh, int kind, uint64_t ino,
                           void *obj, int *first)
{
    assert(fh && obj);
    *first = 0;
    pthread_mutex_lock(&t->hlock);
    void *have = NULL;
    mfs_fs_hslot *s = h_live(t, fh, kind, ino);
    int64_t i = s ? -1 : h_amap_find(t, fh, kind, ino);
    if (s) {
        have = s->obj; /* handed out here meanwhile (2^-32, see h_live) */
    } else if (i >= 0) {
        have = t->slots[t->amap[i] - 1].obj; /* another thread adopted it */
    } else if (h_amap_room(t) == 0) {
        int64_t slot = h_take(t);
        if (slot >= 0) {
            s = &t->slots[slot];
            s->obj = obj;
            s->ino = ino;
            s->kind = kind;
            s->stale = fh;
            h_amap_put(t->amap, t->namap, t->slots, (uint32_t)slot);
            t->nadopt++;
            *first = t->adopted++ == 0;
            have = obj;
        }
    }
    pthread_mutex_unlock(&t->hlock);
    return have;
}

void *mfs_fs_handles_remove(mfs_fs_files *t, uint64_t fh, int kind,
                            uint64_t ino)
{
    if (!fh)
        return NULL;
    void *obj = NULL;
    pthread_mutex_lock(&t->hlock);
    mfs_fs_hslot *s = h_live(t, fh, kind, ino);
    if (!s) {
        int64_t i = h_amap_find(t, fh, kind, ino);
        if (i >= 0) {
            s = &t->slots[t->amap[i] - 1];
            h_amap_del(t, (size_t)i);
        }
    }
    if (s) {
        obj = s->obj;
        h_give(t, s);
    }
    pthread_mutex_unlock(&t->hlock);
    return obj;
}

uint64_t mfs_fs_handles_adopted(mfs_fs_files *t)
{
    pthread_mutex_lock(&t->hlock);
    uint64_t n = t->adopted;
    pthread_mutex_unlock(&t->hlock);
    return n;
}

size_t mfs_fs_handles_open(mfs_fs_files *t)
{
    pthread_mutex_lock(&t->hlock);
    size_t n = t->live;
    pthread_mutex_unlock(&t->hlock);
    return n;
}
