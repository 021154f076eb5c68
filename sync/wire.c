/*
 * wire.c - datagram header, sealing, and frame codec (see wire.h).
 * Must never read outside its input, allocate, or keep state: it runs on
 * untrusted bytes, and the frame parser is fuzzed (tests/fuzz/).
 */
#include "wire.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

void mfs_wire_hdr_encode(const mfs_wire_hdr *h, uint8_t *out)
{
    mfs_wbuf w;

    mfs_wbuf_init(&w, out, MFS_WIRE_HDR);
    mfs_put_u8(&w, h->version);
    mfs_put_u8(&w, h->flags);
    mfs_put_u32(&w, h->mesh);
    mfs_put_u64(&w, h->src);
    mfs_put_u64(&w, h->dst);
    mfs_put_u64(&w, h->epoch);
    mfs_put_u64(&w, h->pn);
}

int mfs_wire_hdr_decode(const uint8_t *dg, size_t len, mfs_wire_hdr *h)
{
    mfs_rbuf r;

    if (len < MFS_WIRE_HDR + MFS_WIRE_TAG || len > MFS_WIRE_MAX)
        return -EBADMSG;
    mfs_rbuf_init(&r, dg, MFS_WIRE_HDR);
    h->version = mfs_get_u8(&r);
    h->flags = mfs_get_u8(&r);
    h->mesh = mfs_get_u32(&r);
    h->src = mfs_get_u64(&r);
    h->dst = mfs_get_u64(&r);
    h->epoch = mfs_get_u64(&r);
    h->pn = mfs_get_u64(&r);
    if (r.err)
        return -EBADMSG;
    if (h->version == MFS_WIRE_VERSION      ? h->flags != 0
        : h->version == MFS_WIRE_VERSION_ID ? h->flags > MFS_WIRE_KIND_MAX
                                            : 1)
        return -EPROTO;
    return 0;
}

static void nonce_of(const uint8_t *hdr, uint8_t *nonce)
{
    crypto_generichash(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, hdr,
                       MFS_WIRE_HDR, NULL, 0);
}

int mfs_wire_seal(const uint8_t key[32], const mfs_wire_hdr *h,
                  const uint8_t *pt, size_t ptlen, uint8_t *out)
{
    uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
    unsigned long long clen = 0;

    if (ptlen > MFS_WIRE_PAYLOAD_MAX)
        return -EMSGSIZE;
    mfs_wire_hdr_encode(h, out);
    nonce_of(out, nonce);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + MFS_WIRE_HDR, &clen, pt,
                                               ptlen, out, MFS_WIRE_HDR, NULL,
                                               nonce, key);
    return (int)(MFS_WIRE_HDR + clen);
}

int mfs_wire_open(const uint8_t key[32], const uint8_t *dg, size_t len,
                  uint8_t *pt)
{
    uint8_t nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES];
    unsigned long long plen = 0;

    if (len < MFS_WIRE_HDR + MFS_WIRE_TAG || len > MFS_WIRE_MAX)
        return -EBADMSG;
    nonce_of(dg, nonce);
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            pt, &plen, NULL, dg + MFS_WIRE_HDR, len - MFS_WIRE_HDR, dg,
            MFS_WIRE_HDR, nonce, key) != 0) {
        sodium_memzero(pt, MFS_WIRE_PAYLOAD_MAX);
        return -EBADMSG;
    }
    return (int)plen;
}

static int parse_ack(mfs_rbuf *r, mfs_frame *f)
{
    uint64_t largest = mfs_get_u64(r);
    f->u.ack.largest = largest;
    f->u.ack.delay_us = mfs_get_u32(r);
    uint8_t nr = mfs_get_u8(r);
    if (r->err || nr == 0 || nr > MFS_WIRE_MAX_RANGES)
        return -EBADMSG;
    f->u.ack.nranges = nr;
    uint64_t hi = largest;
    for (unsigned i = 0; i < nr; i++) {
        if (i > 0) {
            uint32_t gap = mfs_get_u32(r);
            /* next hi = previous lo - gap - 2 (gap = unacked count - 1) */
            uint64_t prev_lo = f->u.ack.lo[i - 1];
            if ((uint64_t)gap + 2 > prev_lo)
                return -EBADMSG;
            hi = prev_lo - gap - 2;
        }
        uint32_t n = mfs_get_u32(r);
        if (r->err || n > hi)
            return -EBADMSG;
        f->u.ack.hi[i] = hi;
        f->u.ack.lo[i] = hi - n;
    }
    return r->err ? -EBADMSG : 0;
}

static int parse_data(mfs_rbuf *r, mfs_frame *f, uint32_t max_msg)
{
    f->u.data.mtype = mfs_get_u8(r);
    f->u.data.msg_id = mfs_get_u64(r);
    f->u.data.base = mfs_get_u64(r);
    f->u.data.msg_len = mfs_get_u32(r);
    f->u.data.offset = mfs_get_u32(r);
    f->u.data.len = mfs_get_u16(r);
    if (r->err)
        return -EBADMSG;
    uint32_t ml = f->u.data.msg_len, off = f->u.data.offset;
    if (ml > max_msg || off % MFS_WIRE_FRAG != 0 ||
        f->u.data.base > f->u.data.msg_id)
        return -EBADMSG;
    if (ml == 0 ? (off != 0 || f->u.data.len != 0)
                : (off >= ml ||
                   f->u.data.len !=
                       (ml - off < MFS_WIRE_FRAG ? ml - off : MFS_WIRE_FRAG)))
        return -EBADMSG;
    f->u.data.bytes = mfs_get_bytes(r, f->u.data.len);
    return r->err ? -EBADMSG : 0;
}

static int parse_members(mfs_rbuf *r, mfs_frame *f)
{
    uint8_t n = mfs_get_u8(r);
    if (r->err || n == 0 || n > MFS_WIRE_MAX_MEMBERS)
        return -EBADMSG;
    f->u.members.count = n;
    for (unsigned i = 0; i < n; i++) {
        mfs_member_entry *e = &f->u.members.e[i];
        memset(e, 0, sizeof(*e));
        e->id = mfs_get_u64(r);
        e->family = mfs_get_u8(r);
        if (e->family != 4 && e->family != 6)
            return -EBADMSG;
        const uint8_t *a = mfs_get_bytes(r, e->family == 4 ? 4 : 16);
        e->port = mfs_get_u16(r);
        if (r->err || !a || e->id == 0)
            return -EBADMSG;
        memcpy(e->addr, a, e->family == 4 ? 4 : 16);
    }
    return 0;
}

int mfs_wire_frames_parse(const uint8_t *pt, size_t len, uint32_t max_msg,
                          mfs_frame *frames, size_t cap)
{
    mfs_rbuf r;
    size_t n = 0;

    mfs_rbuf_init(&r, pt, len);
    while (mfs_rbuf_left(&r) > 0) {
        uint8_t type = mfs_get_u8(&r);
        if (type == MFS_FR_PAD) {
            /* padding must be zeros to the end */
            size_t left = mfs_rbuf_left(&r);
            const uint8_t *p = mfs_get_bytes(&r, left);
            for (size_t i = 0; p && i < left; i++)
                if (p[i])
                    return -EBADMSG;
            break;
        }
        if (n == cap)
            return -EBADMSG;
        mfs_frame *f = &frames[n];
        f->type = type;
        int rc;
        switch (type) {
        case MFS_FR_HB:
            f->u.hb.t_us = mfs_get_u32(&r);
            f->u.hb.echo_us = mfs_get_u32(&r);
            f->u.hb.hold_us = mfs_get_u32(&r);
            f->u.hb.digest = mfs_get_u32(&r);
            f->u.hb.wall_us = mfs_get_u64(&r);
            f->u.hb.clock = mfs_get_u8(&r);
            rc = r.err ? -EBADMSG : 0;
            break;
        case MFS_FR_ACK:
            rc = parse_ack(&r, f);
            break;
        case MFS_FR_DATA:
            rc = parse_data(&r, f, max_msg);
            break;
        case MFS_FR_MEMBERS:
            rc = parse_members(&r, f);
            break;
        default:
            rc = -EBADMSG;
        }
        if (rc)
            return rc;
        n++;
    }
    return r.err ? -EBADMSG : (int)n;
}

void mfs_wire_put_hb(mfs_wbuf *w, uint32_t t_us, uint32_t echo_us,
                     uint32_t hold_us, uint32_t digest, uint64_t wall_us,
                     uint8_t clock)
{
    mfs_put_u8(w, MFS_FR_HB);
    mfs_put_u32(w, t_us);
    mfs_put_u32(w, echo_us);
    mfs_put_u32(w, hold_us);
    mfs_put_u32(w, digest);
    mfs_put_u64(w, wall_us);
    mfs_put_u8(w, clock);
}

void mfs_wire_put_ack(mfs_wbuf *w, uint32_t delay_us, const uint64_t *lo,
                      const uint64_t *hi, unsigned nr)
{
    if (nr > MFS_WIRE_MAX_RANGES)
        nr = MFS_WIRE_MAX_RANGES;
    mfs_put_u8(w, MFS_FR_ACK);
    mfs_put_u64(w, hi[0]);
    mfs_put_u32(w, delay_us);
    mfs_put_u8(w, (uint8_t)nr);
    for (unsigned i = 0; i < nr; i++) {
        if (i > 0)
            mfs_put_u32(w, (uint32_t)(lo[i - 1] - hi[i] - 2));
        mfs_put_u32(w, (uint32_t)(hi[i] - lo[i]));
    }
}

void mfs_wire_put_data(mfs_wbuf *w, uint8_t mtype, uint64_t msg_id,
                       uint64_t base, uint32_t msg_len, uint32_t offset,
                       const uint8_t *bytes, uint16_t len)
{
    mfs_put_u8(w, MFS_FR_DATA);
    mfs_put_u8(w, mtype);
    mfs_put_u64(w, msg_id);
    mfs_put_u64(w, base);
    mfs_put_u32(w, msg_len);
    mfs_put_u32(w, offset);
    mfs_put_u16(w, len);
    mfs_put_bytes(w, bytes, len);
}

size_t mfs_wire_member_size(const mfs_member_entry *e)
{
    return 8 + 1 + (e->family == 4 ? 4 : 16) + 2;
}

void mfs_wire_put_members(mfs_wbuf *w, const mfs_member_entry *e, unsigned n)
{
    mfs_put_u8(w, MFS_FR_MEMBERS);
    mfs_put_u8(w, (uint8_t)n);
    for (unsigned i = 0; i < n; i++) {
        mfs_put_u64(w, e[i].id);
        mfs_put_u8(w, e[i].family);
        mfs_put_bytes(w, e[i].addr, e[i].family == 4 ? 4 : 16);
        mfs_put_u16(w, e[i].port);
    }
}
