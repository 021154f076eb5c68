/*
 * hs.h - the datagrams of the members' handshake (wire version 3): who is
 * at an address, and the two Noise IK messages (noise.h) that give a pair
 * of members its session keys.
 *
 *   INIT   header (kind 1, src, dst, src's epoch, pn 0) | Noise message 1
 *          | mac1 16 | mac2 16;   message 1's payload: counter u64 |
 *          joinlen u8 | join bytes (an invitation's proof, sync/invite.h)
 *   RESP   header (kind 2, src, dst, src's epoch, pn 0) | Noise message 2
 *          | mac1 | mac2;          message 2's payload: src's epoch u64
 *          | src's wall clock u64 (unix us, 0: none; the initiator measures
 *          its clock's offset from it at once, NTP-style)
 *   PROBE  header (kind 4, src, dst 0, epoch, pn 0) | zeros, 128 bytes
 *   ANSWER header (kind 5, src, dst, epoch, pn 0) | 16 zero bytes
 *   REMOVED header (kind 6, src, dst, epoch, pn 0) | MAC 16: the answer
 *          to a removed member's INIT; the MAC, keyed with the chaining
 *          key both sides hold after message 1 (secret: it comes from
 *          the Diffie-Hellmans), proves it to the initiator
 *
 * The Noise prologue is "meshfs hs 1" and the INIT header up to its pn,
 * so a message 1 names its sender, receiver, boot epoch and mesh. mac1 is
 * BLAKE2b-128 of the datagram before it, keyed with a hash of the
 * receiver's static public key: a receiver checks it before any
 * Diffie-Hellman, so a sender that does not know its key costs it one
 * hash. mac2 is zero, or, once a responder under load answered with
 *   COOKIE header (kind 3, src, dst, epoch, pn 0) | nonce 24 |
 *          XChaCha20-Poly1305(cookie 16) keyed with a hash of the
 *          responder's static key, the INIT's mac1 as associated data
 * a MAC of the datagram keyed with that cookie: a hash of the sender's
 * address under a secret the responder changes every 2 min, which only
 * who receives at that address learns. The counter
 * grows with every INIT a boot sends: with the epoch it makes a replayed
 * message 1 stale. The answers are never larger than what they answer.
 *
 * Pure byte functions; any thread.
 */
#ifndef MFS_SYNC_HS_H
#define MFS_SYNC_HS_H

#include "noise.h"
#include "wire.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MFS_HS_JOIN_MAX 96
#define MFS_HS_MAC_LEN 16
#define MFS_HS_PROBE_LEN 128
#define MFS_HS_ANSWER_LEN (MFS_WIRE_HDR + 16)
#define MFS_HS_REMOVED_LEN (MFS_WIRE_HDR + 16)
#define MFS_HS_COOKIE_LEN (MFS_WIRE_HDR + 24 + 16 + 16)
/* the sizes of INIT (with joinlen join bytes) and RESP */
#define MFS_HS_INIT_LEN(j)                                                     \
    (MFS_WIRE_HDR + MFS_NOISE_MSG1_LEN(9 + (j)) + 2 * MFS_HS_MAC_LEN)
#define MFS_HS_RESP_LEN                                                        \
    (MFS_WIRE_HDR + MFS_NOISE_MSG2_LEN(16) + 2 * MFS_HS_MAC_LEN)

typedef struct mfs_hs_hello {
    uint64_t counter;
    size_t joinlen;
    uint8_t join[MFS_HS_JOIN_MAX];
} mfs_hs_hello;

/* The key mac1 of datagrams to the holder of static key pub is made with. */
void mfs_hs_mac1_key(const uint8_t pub[32], uint8_t key[32]);

/* Starts st as initiator (static key s, towards rs) and writes INIT with
 * header h (kind and pn are set here) into out (MFS_WIRE_MAX bytes).
 * Returns its length, or -EINVAL (joinlen too long), -EPROTO (rs is of
 * small order). */
ssize_t mfs_hs_init_write(mfs_noise *st, const mfs_noise_keypair *s,
                          const uint8_t rs[32], const mfs_wire_hdr *h,
                          const mfs_hs_hello *hello, uint8_t *out);
/* Sets INIT dg's mac2 with cookie (16 bytes). */
void mfs_hs_init_mac2(uint8_t *dg, size_t len, const uint8_t cookie[16]);
/* 1 if dg (an INIT or RESP) carries a right mac1 for my_mac1, or a right
 * mac2 for cookie; else 0. */
int mfs_hs_mac1_ok(const uint8_t my_mac1[32], const uint8_t *dg, size_t len);
int mfs_hs_mac2_ok(const uint8_t cookie[16], const uint8_t *dg, size_t len);
/* COOKIE: written by a responder (static key my_pub) to the sender of
 * INIT init (whose header h it answers), read by that initiator (which
 * knows the responder's key and its INIT). write returns the length;
 * read returns 0 and the cookie, or -EBADMSG. */
size_t mfs_hs_cookie_write(const uint8_t my_pub[32], const uint8_t cookie[16],
                           const uint8_t *init, size_t init_len,
                           const mfs_wire_hdr *h, uint8_t *out);
int mfs_hs_cookie_read(const uint8_t peer_pub[32], const uint8_t *init,
                       size_t init_len, const uint8_t *dg, size_t len,
                       uint8_t cookie[16]);
/* Responder: checks mac1 with my_mac1 (mfs_hs_mac1_key of our key), then
 * starts st as responder with s and opens message 1. 0 and *hello, the
 * initiator's static key in st->rs; -EBADMSG (bad length, mac1, or not
 * opened: st is failed). */
int mfs_hs_init_read(mfs_noise *st, const mfs_noise_keypair *s,
                     const uint8_t my_mac1[32], const uint8_t *dg, size_t len,
                     mfs_hs_hello *hello);
/* Responder, after init_read: writes RESP with header h (src's epoch in
 * it) and our wall clock wall_us into out. Returns its length or
 * -EPROTO. */
ssize_t mfs_hs_resp_write(mfs_noise *st, const mfs_wire_hdr *h,
                          uint64_t wall_us, uint8_t *out);
/* Initiator: checks mac1 and opens RESP (whose decoded header is h); its
 * payload must carry h's epoch. 0 and the responder's wall clock in
 * *wall_us, or -EBADMSG (st failed). */
int mfs_hs_resp_read(mfs_noise *st, const uint8_t my_mac1[32],
                     const mfs_wire_hdr *h, const uint8_t *dg, size_t len,
                     uint64_t *wall_us);

/* REMOVED: written by the responder whose st read the INIT (header h),
 * checked by the initiator whose st wrote it. write returns the length;
 * check returns 0 or -EBADMSG. Neither changes st. */
size_t mfs_hs_removed_write(const mfs_noise *st, const mfs_wire_hdr *h,
                            uint8_t *out);
int mfs_hs_removed_check(const mfs_noise *st, const uint8_t *dg, size_t len);

#endif
