/*
 * codec.c - bounds-checked big-endian put/get helpers (see codec.h).
 * Must never touch memory outside the caller's buffer, and must never
 * allocate: it is on the path of unauthenticated input in sync/.
 */
#include "codec.h"

#include <errno.h>
#include <string.h>

void mfs_wbuf_init(mfs_wbuf *w, void *p, size_t cap)
{
    w->p = p;
    w->cap = cap;
    w->len = 0;
    w->err = 0;
}

void mfs_put_bytes(mfs_wbuf *w, const void *b, size_t n)
{
    uint8_t *p = mfs_wroom(w, n);
    if (p && n)
        memcpy(p, b, n);
}

void mfs_put_str16(mfs_wbuf *w, const void *b, size_t n)
{
    if (n > UINT16_MAX) {
        if (!w->err)
            w->err = -ENOBUFS;
        return;
    }
    mfs_put_u16(w, (uint16_t)n);
    mfs_put_bytes(w, b, n);
}

void mfs_put_blob32(mfs_wbuf *w, const void *b, size_t n)
{
    if (n > UINT32_MAX) {
        if (!w->err)
            w->err = -ENOBUFS;
        return;
    }
    mfs_put_u32(w, (uint32_t)n);
    mfs_put_bytes(w, b, n);
}

void mfs_rbuf_init(mfs_rbuf *r, const void *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->off = 0;
    r->err = 0;
}

const uint8_t *mfs_get_bytes(mfs_rbuf *r, size_t n)
{
    return mfs_rtake(r, n);
}

const uint8_t *mfs_get_str16(mfs_rbuf *r, size_t *n, size_t max)
{
    size_t len = mfs_get_u16(r);
    if (!r->err && len > max)
        r->err = -EBADMSG;
    const uint8_t *p = mfs_rtake(r, len);
    *n = p ? len : 0;
    return p;
}

const uint8_t *mfs_get_blob32(mfs_rbuf *r, size_t *n, size_t max)
{
    size_t len = mfs_get_u32(r);
    if (!r->err && len > max)
        r->err = -EBADMSG;
    const uint8_t *p = mfs_rtake(r, len);
    *n = p ? len : 0;
    return p;
}
