/*
 * inval.c - the queue between the store's change callback and the thread
 * that tells the kernel to drop cached entries and pages.
 *
 * The callback runs on whatever thread applied a change (later: the sync
 * thread; possibly a FUSE worker). A fuse_lowlevel_notify_* call made there
 * can deadlock (the kernel may wait for a request that this very thread
 * would have to answer), so the callback only queues and a dedicated thread
 * sends. This file must never call into FUSE or the store.
 */
#include "fs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int mfs_fs_invalq_init(mfs_fs_invalq *q)
{
    memset(q, 0, sizeof *q);
    pthread_mutex_init(&q->lock, NULL);
    pthread_cond_init(&q->cond, NULL);
    return 0;
}

void mfs_fs_invalq_close(mfs_fs_invalq *q)
{
    mfs_fs_inval_item *it = q->head;
    while (it) {
        mfs_fs_inval_item *next = it->next;
        free(it);
        it = next;
    }
    q->head = q->tail = NULL;
    q->len = 0;
    pthread_mutex_destroy(&q->lock);
    pthread_cond_destroy(&q->cond);
}

int mfs_fs_invalq_push(mfs_fs_invalq *q, int kind, uint64_t ino,
                       const char *name)
{
    if (!name)
        name = "";
    size_t n = strlen(name);
    mfs_fs_inval_item *it = malloc(sizeof *it + n + 1);
    if (!it)
        return -ENOMEM;
    it->next = NULL;
    it->kind = kind;
    it->ino = ino;
    memcpy(it->name, name, n + 1);
    pthread_mutex_lock(&q->lock);
    if (q->len >= MFS_FS_INVALQ_MAX || q->stop) {
        q->dropped++;
        pthread_mutex_unlock(&q->lock);
        free(it);
        return -ENOBUFS;
    }
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
    q->len++;
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->lock);
    return 0;
}

mfs_fs_inval_item *mfs_fs_invalq_pop(mfs_fs_invalq *q)
{
    mfs_fs_inval_item *it = NULL;
    pthread_mutex_lock(&q->lock);
    while (!q->head && !q->stop)
        pthread_cond_wait(&q->cond, &q->lock);
    if (!q->stop && q->head) {
        it = q->head;
        q->head = it->next;
        if (!q->head)
            q->tail = NULL;
        q->len--;
    }
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
