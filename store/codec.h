/*
 * codec.h - bounds-checked big-endian encoding and decoding.
 *
 * A writer or reader keeps its first error: once a put or get fails
 * (out of room, truncated input) every later call is a no-op and returns
 * zeros, and the caller checks ->err once at the end. Used for the op log,
 * the LMDB values and (by sync/) the wire format. Never reads or writes a
 * byte outside the buffer it was given.
 */
#ifndef MFS_CODEC_H
#define MFS_CODEC_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

typedef struct mfs_wbuf {
    uint8_t *p; /* borrowed, caller owns */
    size_t cap;
    size_t len;
    int err; /* 0 or -ENOBUFS */
} mfs_wbuf;

typedef struct mfs_rbuf {
    const uint8_t *p; /* borrowed */
    size_t len;
    size_t off;
    int err; /* 0 or -EBADMSG */
} mfs_rbuf;

/* Plain big-endian helpers for fixed-size keys (inline: every key and
 * record of the store is built and read with them). */
static inline void mfs_be64_put(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}
static inline uint64_t mfs_be64_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}
static inline void mfs_be32_put(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline uint32_t mfs_be32_get(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | p[3];
}

/* n bytes of room at the end of w, or NULL (and w->err) if there is none. */
static inline uint8_t *mfs_wroom(mfs_wbuf *w, size_t n)
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
static inline void mfs_put_u8(mfs_wbuf *w, uint8_t v)
{
    uint8_t *p = mfs_wroom(w, 1);
    if (p)
        p[0] = v;
}
static inline void mfs_put_u16(mfs_wbuf *w, uint16_t v)
{
    uint8_t *p = mfs_wroom(w, 2);
    if (p) {
        p[0] = (uint8_t)(v >> 8);
        p[1] = (uint8_t)v;
    }
}
static inline void mfs_put_u32(mfs_wbuf *w, uint32_t v)
{
    uint8_t *p = mfs_wroom(w, 4);
    if (p)
        mfs_be32_put(p, v);
}
static inline void mfs_put_u64(mfs_wbuf *w, uint64_t v)
{
    uint8_t *p = mfs_wroom(w, 8);
    if (p)
        mfs_be64_put(p, v);
}

/* The next n bytes of r, or NULL (and r->err) if the input is shorter. */
static inline const uint8_t *mfs_rtake(mfs_rbuf *r, size_t n)
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
static inline uint8_t mfs_get_u8(mfs_rbuf *r)
{
    const uint8_t *p = mfs_rtake(r, 1);
    return p ? p[0] : 0;
}
static inline uint16_t mfs_get_u16(mfs_rbuf *r)
{
    const uint8_t *p = mfs_rtake(r, 2);
    return p ? (uint16_t)((p[0] << 8) | p[1]) : 0;
}
static inline uint32_t mfs_get_u32(mfs_rbuf *r)
{
    const uint8_t *p = mfs_rtake(r, 4);
    return p ? mfs_be32_get(p) : 0;
}
static inline uint64_t mfs_get_u64(mfs_rbuf *r)
{
    const uint8_t *p = mfs_rtake(r, 8);
    return p ? mfs_be64_get(p) : 0;
}

/* LEB128: 7 bits a byte, low first, at most 10 bytes for 64 bits. A
 * longer or overlong encoding is an error (-EBADMSG). */
static inline void mfs_put_varint(mfs_wbuf *w, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    do {
        b[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            b[n] |= 0x80;
        n++;
    } while (v);
    uint8_t *p = mfs_wroom(w, n);
    for (size_t i = 0; p && i < n; i++)
        p[i] = b[i];
}
static inline uint64_t mfs_get_varint(mfs_rbuf *r)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 70; shift += 7) {
        const uint8_t *p = mfs_rtake(r, 1);
        if (!p)
            return 0;
        if (shift == 63 && (*p & 0x7e)) /* more than 64 bits */
            break;
        v |= (uint64_t)(*p & 0x7f) << shift;
        if (!(*p & 0x80))
            return v;
    }
    r->err = -EBADMSG;
    return 0;
}
/* Signed values, small ones of either sign in few bytes (zigzag). */
static inline void mfs_put_svarint(mfs_wbuf *w, int64_t v)
{
    mfs_put_varint(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}
static inline int64_t mfs_get_svarint(mfs_rbuf *r)
{
    uint64_t u = mfs_get_varint(r);
    return (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
}

void mfs_wbuf_init(mfs_wbuf *w, void *p, size_t cap);
void mfs_put_bytes(mfs_wbuf *w, const void *b, size_t n);
/* u16 length then bytes */
void mfs_put_str16(mfs_wbuf *w, const void *b, size_t n);
/* u32 length then bytes */
void mfs_put_blob32(mfs_wbuf *w, const void *b, size_t n);

void mfs_rbuf_init(mfs_rbuf *r, const void *p, size_t len);
/* Returns a pointer into the input (NULL on error). */
const uint8_t *mfs_get_bytes(mfs_rbuf *r, size_t n);
/* u16 length + bytes; *n gets the length. max caps the length (-EBADMSG). */
const uint8_t *mfs_get_str16(mfs_rbuf *r, size_t *n, size_t max);
const uint8_t *mfs_get_blob32(mfs_rbuf *r, size_t *n, size_t max);
static inline size_t mfs_rbuf_left(const mfs_rbuf *r)
{
    return r->err ? 0 : r->len - r->off;
}


#endif
