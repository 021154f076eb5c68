/*
 * codec.c - bounds-checked big-endian put/get helpers (see codec.h).
 * Must never touch memory outside the caller's buffer, and must never
 * allocate: it is on the path of unauthenticated input in sync/.
 */
#include "codec.h"

#include <errno.h>
#include <string.h>

void mfs_be64_put(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

uint64_t mfs_be64_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

void mfs_be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

uint32_t mfs_be32_get(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | p[3];
}

void mfs_wbuf_init(mfs_wbuf *w, void *p, size_t cap)
{
    w->p = p;
    w->cap = cap;
    w->len = 0;
    w->err = 0;
}

static uint8_t *wroom(mfs_wbuf *w, size_t n)
{
    if (w->err)
        return NULL;
    if (w->cap - w->len < n) {
        w->err = -ENOBUFS;
        return NULL;
    }
    uint8_t *p = w->p + w->len;
    w->len += n;
    return p;
}

void mfs_put_u8(mfs_wbuf *w, uint8_t v)
{
    uint8_t *p = wroom(w, 1);
    if (p)
        p[0] = v;
}

void mfs_put_u16(mfs_wbuf *w, uint16_t v)
{
    uint8_t *p = wroom(w, 2);
    if (p) {
        p[0] = (uint8_t)(v >> 8);
        p[1] = (uint8_t)v;
    }
}

void mfs_put_u32(mfs_wbuf *w, uint32_t v)
{
    uint8_t *p = wroom(w, 4);
    if (p)
        mfs_be32_put(p, v);
}

void mfs_put_u64(mfs_wbuf *w, uint64_t v)
{
    uint8_t *p = wroom(w, 8);
    if (p)
        mfs_be64_put(p, v);
}

void mfs_put_bytes(mfs_wbuf *w, const void *b, size_t n)
{
    uint8_t *p = wroom(w, n);
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

static const uint8_t *rtake(mfs_rbuf *r, size_t n)
{
    if (r->err)
        return NULL;
    if (r->len - r->off < n) {
        r->err = -EBADMSG;
        return NULL;
    }
    const uint8_t *p = r->p + r->off;
    r->off += n;
    return p;
}

uint8_t mfs_get_u8(mfs_rbuf *r)
{
    const uint8_t *p = rtake(r, 1);
    return p ? p[0] : 0;
}

uint16_t mfs_get_u16(mfs_rbuf *r)
{
    const uint8_t *p = rtake(r, 2);
    return p ? (uint16_t)((p[0] << 8) | p[1]) : 0;
}

uint32_t mfs_get_u32(mfs_rbuf *r)
{
    const uint8_t *p = rtake(r, 4);
    return p ? mfs_be32_get(p) : 0;
}

uint64_t mfs_get_u64(mfs_rbuf *r)
{
    const uint8_t *p = rtake(r, 8);
    return p ? mfs_be64_get(p) : 0;
}

const uint8_t *mfs_get_bytes(mfs_rbuf *r, size_t n)
{
    return rtake(r, n);
}

const uint8_t *mfs_get_str16(mfs_rbuf *r, size_t *n, size_t max)
{
    size_t len = mfs_get_u16(r);
    if (!r->err && len > max)
        r->err = -EBADMSG;
    const uint8_t *p = rtake(r, len);
    *n = p ? len : 0;
    return p;
}

const uint8_t *mfs_get_blob32(mfs_rbuf *r, size_t *n, size_t max)
{
    size_t len = mfs_get_u32(r);
    if (!r->err && len > max)
        r->err = -EBADMSG;
    const uint8_t *p = rtake(r, len);
    *n = p ? len : 0;
    return p;
}
