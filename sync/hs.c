/*
 * hs.c - the handshake's datagrams (see hs.h). Must never run a
 * Diffie-Hellman for a datagram whose mac1 does not check, nor accept one
 * a byte longer or shorter than its kind.
 */
#include "hs.h"

#include "codec.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

#define PROLOGUE "meshfs hs 1"
#define PLEN (sizeof(PROLOGUE) - 1)
#define HDR_BOUND 30 /* the header before pn */

void mfs_hs_mac1_key(const uint8_t pub[32], uint8_t key[32])
{
    crypto_generichash(key, 32, pub, 32, (const uint8_t *)"meshfs mac1", 11);
}

static void mac(const uint8_t key[32], const uint8_t *dg, size_t len,
                uint8_t out[MFS_HS_MAC_LEN])
{
    crypto_generichash(out, MFS_HS_MAC_LEN, dg, len, key, 32);
}

static int mac_ok(const uint8_t key[32], const uint8_t *dg, size_t len)
{
    uint8_t m[MFS_HS_MAC_LEN];
    size_t at = len - 2 * MFS_HS_MAC_LEN;
    mac(key, dg, at, m);
    return sodium_memcmp(m, dg + at, MFS_HS_MAC_LEN) == 0;
}

/* Fills the macs after the message (at: its end); returns the length. */
static size_t seal_macs(const uint8_t peer_pub[32], uint8_t *out, size_t at)
{
    uint8_t key[32];
    mfs_hs_mac1_key(peer_pub, key);
    mac(key, out, at, out + at);
    memset(out + at + MFS_HS_MAC_LEN, 0, MFS_HS_MAC_LEN);
    return at + 2 * MFS_HS_MAC_LEN;
}

static void prologue(const uint8_t *hdr, uint8_t out[PLEN + HDR_BOUND])
{
    memcpy(out, PROLOGUE, PLEN);
    memcpy(out + PLEN, hdr, HDR_BOUND);
}

ssize_t mfs_hs_init_write(mfs_noise *st, const mfs_noise_keypair *s,
                          const uint8_t rs[32], const mfs_wire_hdr *h,
                          const mfs_hs_hello *hello, uint8_t *out)
{
    if (hello->joinlen > MFS_HS_JOIN_MAX)
        return -EINVAL;
    mfs_wire_hdr hh = *h;
    hh.version = MFS_WIRE_VERSION_ID;
    hh.flags = MFS_WIRE_INIT;
    hh.pn = 0;
    mfs_wire_hdr_encode(&hh, out);
    uint8_t pro[PLEN + HDR_BOUND], pay[9 + MFS_HS_JOIN_MAX];
    prologue(out, pro);
    mfs_noise_initiator(st, s, rs, pro, sizeof(pro));
    mfs_wbuf w;
    mfs_wbuf_init(&w, pay, sizeof(pay));
    mfs_put_u64(&w, hello->counter);
    mfs_put_u8(&w, (uint8_t)hello->joinlen);
    mfs_put_bytes(&w, hello->join, hello->joinlen);
    ssize_t n = mfs_noise_write1(st, pay, w.len, out + MFS_WIRE_HDR,
                                 MFS_WIRE_MAX - MFS_WIRE_HDR);
    sodium_memzero(pay, sizeof(pay));
    if (n < 0)
        return n;
    return (ssize_t)seal_macs(rs, out, MFS_WIRE_HDR + (size_t)n);
}

int mfs_hs_init_read(mfs_noise *st, const mfs_noise_keypair *s,
                     const uint8_t my_mac1[32], const uint8_t *dg, size_t len,
                     mfs_hs_hello *hello)
{
    if (len < MFS_HS_INIT_LEN(0) || len > MFS_HS_INIT_LEN(MFS_HS_JOIN_MAX) ||
        !mac_ok(my_mac1, dg, len))
        return -EBADMSG;
    uint8_t pro[PLEN + HDR_BOUND], pay[9 + MFS_HS_JOIN_MAX];
    prologue(dg, pro);
    mfs_noise_responder(st, s, pro, sizeof(pro));
    ssize_t n = mfs_noise_read1(st, dg + MFS_WIRE_HDR,
                                len - MFS_WIRE_HDR - 2 * MFS_HS_MAC_LEN, pay,
                                sizeof(pay));
    if (n < 0)
        return -EBADMSG;
    mfs_rbuf r;
    mfs_rbuf_init(&r, pay, (size_t)n);
    hello->counter = mfs_get_u64(&r);
    hello->joinlen = mfs_get_u8(&r);
    const uint8_t *j = mfs_get_bytes(&r, hello->joinlen);
    if (r.err || !j || mfs_rbuf_left(&r) != 0 ||
        hello->joinlen > MFS_HS_JOIN_MAX) {
        mfs_noise_wipe(st);
        return -EBADMSG;
    }
    memcpy(hello->join, j, hello->joinlen);
    sodium_memzero(pay, sizeof(pay));
    return 0;
}

ssize_t mfs_hs_resp_write(mfs_noise *st, const mfs_wire_hdr *h,
                          uint64_t wall_us, uint8_t *out)
{
    mfs_wire_hdr hh = *h;
    hh.version = MFS_WIRE_VERSION_ID;
    hh.flags = MFS_WIRE_RESP;
    hh.pn = 0;
    mfs_wire_hdr_encode(&hh, out);
    uint8_t pay[16];
    mfs_be64_put(pay, h->epoch);
    mfs_be64_put(pay + 8, wall_us);
    ssize_t n = mfs_noise_write2(st, pay, sizeof(pay), out + MFS_WIRE_HDR,
                                 MFS_WIRE_MAX - MFS_WIRE_HDR);
    if (n < 0)
        return n;
    return (ssize_t)seal_macs(st->rs, out, MFS_WIRE_HDR + (size_t)n);
}

int mfs_hs_resp_read(mfs_noise *st, const uint8_t my_mac1[32],
                     const mfs_wire_hdr *h, const uint8_t *dg, size_t len,
                     uint64_t *wall_us)
{
    if (len != MFS_HS_RESP_LEN || !mac_ok(my_mac1, dg, len))
        return -EBADMSG;
    uint8_t pay[16];
    ssize_t n = mfs_noise_read2(st, dg + MFS_WIRE_HDR,
                                len - MFS_WIRE_HDR - 2 * MFS_HS_MAC_LEN, pay,
                                sizeof(pay));
    if (n != 16 || mfs_be64_get(pay) != h->epoch) {
        mfs_noise_wipe(st);
        return -EBADMSG;
    }
    *wall_us = mfs_be64_get(pay + 8);
    return 0;
}

/* The MAC of a REMOVED datagram: its header under the chaining key. */
static void removed_mac(const mfs_noise *st, const uint8_t *hdr,
                        uint8_t out[16])
{
    crypto_generichash_state g;
    crypto_generichash_init(&g, st->ck, sizeof(st->ck), 16);
    crypto_generichash_update(&g, (const uint8_t *)"meshfs removed", 14);
    crypto_generichash_update(&g, hdr, MFS_WIRE_HDR);
    crypto_generichash_final(&g, out, 16);
}

size_t mfs_hs_removed_write(const mfs_noise *st, const mfs_wire_hdr *h,
                            uint8_t *out)
{
    mfs_wire_hdr hh = *h;
    hh.version = MFS_WIRE_VERSION_ID;
    hh.flags = MFS_WIRE_REMOVED;
    hh.pn = 0;
    mfs_wire_hdr_encode(&hh, out);
    removed_mac(st, out, out + MFS_WIRE_HDR);
    return MFS_HS_REMOVED_LEN;
}

int mfs_hs_removed_check(const mfs_noise *st, const uint8_t *dg, size_t len)
{
    uint8_t m[16];
    if (len != MFS_HS_REMOVED_LEN || st->step != 1)
        return -EBADMSG;
    removed_mac(st, dg, m);
    return sodium_memcmp(m, dg + MFS_WIRE_HDR, 16) ? -EBADMSG : 0;
}

void mfs_hs_init_mac2(uint8_t *dg, size_t len, const uint8_t cookie[16])
{
    crypto_generichash(dg + len - MFS_HS_MAC_LEN, MFS_HS_MAC_LEN, dg,
                       len - MFS_HS_MAC_LEN, cookie, 16);
}

int mfs_hs_mac1_ok(const uint8_t my_mac1[32], const uint8_t *dg, size_t len)
{
    return len >= MFS_WIRE_HDR + 2 * MFS_HS_MAC_LEN && mac_ok(my_mac1, dg, len);
}

int mfs_hs_mac2_ok(const uint8_t cookie[16], const uint8_t *dg, size_t len)
{
    uint8_t m[MFS_HS_MAC_LEN];
    if (len < MFS_WIRE_HDR + 2 * MFS_HS_MAC_LEN)
        return 0;
    crypto_generichash(m, sizeof(m), dg, len - MFS_HS_MAC_LEN, cookie, 16);
    return sodium_memcmp(m, dg + len - MFS_HS_MAC_LEN, MFS_HS_MAC_LEN) == 0;
}

static void cookie_key(const uint8_t pub[32], uint8_t key[32])
{
    crypto_generichash(key, 32, pub, 32, (const uint8_t *)"meshfs cookie", 13);
}

size_t mfs_hs_cookie_write(const uint8_t my_pub[32], const uint8_t cookie[16],
                           const uint8_t *init, size_t init_len,
                           const mfs_wire_hdr *h, uint8_t *out)
{
    uint8_t key[32];
    mfs_wire_hdr hh = *h;
    hh.version = MFS_WIRE_VERSION_ID;
    hh.flags = MFS_WIRE_COOKIE;
    hh.pn = 0;
    mfs_wire_hdr_encode(&hh, out);
    uint8_t *nonce = out + MFS_WIRE_HDR;
    randombytes_buf(nonce, 24);
    cookie_key(my_pub, key);
    const uint8_t *mac1 = init + init_len - 2 * MFS_HS_MAC_LEN;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + MFS_WIRE_HDR + 24, NULL,
                                               cookie, 16, mac1, MFS_HS_MAC_LEN,
                                               NULL, nonce, key);
    return MFS_HS_COOKIE_LEN;
}

int mfs_hs_cookie_read(const uint8_t peer_pub[32], const uint8_t *init,
                       size_t init_len, const uint8_t *dg, size_t len,
                       uint8_t cookie[16])
{
    uint8_t key[32];
    if (len != MFS_HS_COOKIE_LEN || init_len < MFS_HS_INIT_LEN(0))
        return -EBADMSG;
    cookie_key(peer_pub, key);
    const uint8_t *mac1 = init + init_len - 2 * MFS_HS_MAC_LEN;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            cookie, NULL, NULL, dg + MFS_WIRE_HDR + 24, 32, mac1,
            MFS_HS_MAC_LEN, dg + MFS_WIRE_HDR, key))
        return -EBADMSG;
    return 0;
}
