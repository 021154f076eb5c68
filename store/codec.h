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

void mfs_wbuf_init(mfs_wbuf *w, void *p, size_t cap);
void mfs_put_u8(mfs_wbuf *w, uint8_t v);
void mfs_put_u16(mfs_wbuf *w, uint16_t v);
void mfs_put_u32(mfs_wbuf *w, uint32_t v);
void mfs_put_u64(mfs_wbuf *w, uint64_t v);
void mfs_put_bytes(mfs_wbuf *w, const void *b, size_t n);
/* u16 length then bytes */
void mfs_put_str16(mfs_wbuf *w, const void *b, size_t n);
/* u32 length then bytes */
void mfs_put_blob32(mfs_wbuf *w, const void *b, size_t n);

void mfs_rbuf_init(mfs_rbuf *r, const void *p, size_t len);
uint8_t mfs_get_u8(mfs_rbuf *r);
uint16_t mfs_get_u16(mfs_rbuf *r);
uint32_t mfs_get_u32(mfs_rbuf *r);
uint64_t mfs_get_u64(mfs_rbuf *r);
/* Returns a pointer into the input (NULL on error). */
const uint8_t *mfs_get_bytes(mfs_rbuf *r, size_t n);
/* u16 length + bytes; *n gets the length. max caps the length (-EBADMSG). */
const uint8_t *mfs_get_str16(mfs_rbuf *r, size_t *n, size_t max);
const uint8_t *mfs_get_blob32(mfs_rbuf *r, size_t *n, size_t max);
static inline size_t mfs_rbuf_left(const mfs_rbuf *r)
{
    return r->err ? 0 : r->len - r->off;
}

/* Plain big-endian helpers for fixed-size keys. */
void mfs_be64_put(uint8_t *p, uint64_t v);
uint64_t mfs_be64_get(const uint8_t *p);
void mfs_be32_put(uint8_t *p, uint32_t v);
uint32_t mfs_be32_get(const uint8_t *p);

#endif
