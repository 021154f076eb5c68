/*
 * inodes.c - kernel lookup counts per inode number.
 *
 * Every reply that hands the kernel an entry (lookup, create, mknod, mkdir,
 * symlink, link, readdirplus) adds one; FORGET subtracts what the kernel
 * says. When a count reaches zero fs/ tells the store to forget the inode,
 * as libfuse's passthrough_hp does. An open-addressing hash table with
 * linear probing, under one mutex. It must never call into the store.
 */
#include "fs.h"

#include <errno.h>
#include <stdlib.h>

#define EMPTY 0u
#define TOMB UINT64_MAX

int mfs_fs_inodes_init(mfs_fs_inodes *t)
{
    t->cap = 1024;
    t->used = t->tombs = 0;
    t->keys = calloc(t->cap, sizeof *t->keys);
    t->vals = calloc(t->cap, sizeof *t->vals);
    if (!t->keys || !t->vals) {
        free(t->keys);
        free(t->vals);
        t->keys = t->vals = NULL;
        return -ENOMEM;
    }
    pthread_mutex_init(&t->lock, NULL);
    return 0;
}

void mfs_fs_inodes_close(mfs_fs_inodes *t)
{
    if (!t->keys)
        return;
    free(t->keys);
    free(t->vals);
    t->keys = t->vals = NULL;
    pthread_mutex_destroy(&t->lock);
}

/* Slot holding k, or SIZE_MAX. */
static size_t find(const mfs_fs_inodes *t, uint64_t k)
{
    for (size_t i = mfs_fs_ino_slot(k, t->cap), n = 0; n < t->cap;
         i = (i + 1) & (t->cap - 1), n++) {
        if (t->keys[i] == EMPTY)
            return SIZE_MAX;
        if (t->keys[i] == k)
            return i;
    }
    return SIZE_MAX;
}

static int resize(mfs_fs_inodes *t, size_t cap)
{
    uint64_t *keys = calloc(cap, sizeof *keys);
    uint64_t *vals = calloc(cap, sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return -ENOMEM;
    }
    for (size_t i = 0; i < t->cap; i++) {
        if (t->keys[i] == EMPTY || t->keys[i] == TOMB)
            continue;
        size_t j = mfs_fs_ino_slot(t->keys[i], cap);
        while (keys[j] != EMPTY)
            j = (j + 1) & (cap - 1);
        keys[j] = t->keys[i];
        vals[j] = t->vals[i];
    }
    free(t->keys);
    free(t->vals);
    t->keys = keys;
    t->vals = vals;
    t->cap = cap;
    t->tombs = 0;
    return 0;
}

int mfs_fs_inodes_ref(mfs_fs_inodes *t, uint64_t ino, uint64_t n)
{
    int r = 0;
    if (ino == EMPTY || ino == TOMB)
        return -EINVAL;
    pthread_mutex_lock(&t->lock);
    size_t i = find(t, ino);
    if (i != SIZE_MAX) {
        t->vals[i] += n;
        goto out;
    }
    if ((t->used + t->tombs + 1) * 4 > t->cap * 3) {
        size_t cap = t->cap;
        if ((t->used + 1) * 2 > cap)
            cap *= 2;
        r = resize(t, cap);
        if (r < 0)
            goto out;
    }
    i = mfs_fs_ino_slot(ino, t->cap);
    while (t->keys[i] != EMPTY && t->keys[i] != TOMB)
        i = (i + 1) & (t->cap - 1);
    if (t->keys[i] == TOMB)
        t->tombs--;
    t->keys[i] = ino;
    t->vals[i] = n;
    t->used++;
out:
    pthread_mutex_unlock(&t->lock);
    return r;
}

int mfs_fs_inodes_unref(mfs_fs_inodes *t, uint64_t ino, uint64_t n)
{
    int zero = 0;
    pthread_mutex_lock(&t->lock);
    size_t i = find(t, ino);
    if (i != SIZE_MAX) {
        if (t->vals[i] <= n) {
            t->keys[i] = TOMB;
            t->vals[i] = 0;
            t->used--;
            t->tombs++;
            zero = 1;
        } else {
            t->vals[i] -= n;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return zero;
}

uint64_t mfs_fs_inodes_count(mfs_fs_inodes *t, uint64_t ino)
{
    pthread_mutex_lock(&t->lock);
    size_t i = find(t, ino);
    uint64_t v = i == SIZE_MAX ? 0 : t->vals[i];
    pthread_mutex_unlock(&t->lock);
    return v;
}

size_t mfs_fs_inodes_size(mfs_fs_inodes *t)
{
    pthread_mutex_lock(&t->lock);
    size_t n = t->used;
    pthread_mutex_unlock(&t->lock);
    return n;
}
