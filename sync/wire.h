/*
 * wire.h - the meshfs datagram format: a cleartext versioned header, an
 * XChaCha20-Poly1305 sealed payload (header as associated data), and the
 * frames inside the payload. Byte layouts are in docs/WIRE.md.
 *
 * Everything here is pure and thread-safe: no allocation, no state, no
 * logging. Decoders take untrusted bytes and never read outside them.
 */
#ifndef MFS_SYNC_WIRE_H
#define MFS_SYNC_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "codec.h"

#define MFS_WIRE_VERSION 2 /* 2: heartbeats carry the wall clock */
/* 3: a mesh of per-node keys (sync/hs.h): flags name the kind of
 * datagram (enum mfs_wire_kind), and DATA ones are sealed with the pair's
 * session key, not the mesh key */
#define MFS_WIRE_VERSION_ID 3
#define MFS_WIRE_MAX 1400 /* largest datagram we send or accept */
#define MFS_WIRE_HDR 38   /* cleartext header */
#define MFS_WIRE_TAG 16   /* Poly1305 tag */
#define MFS_WIRE_PAYLOAD_MAX (MFS_WIRE_MAX - MFS_WIRE_HDR - MFS_WIRE_TAG)
#define MFS_WIRE_FRAG 1200      /* message bytes per DATA frame */
#define MFS_WIRE_DATA_HDR 28    /* DATA frame overhead */
#define MFS_WIRE_MAX_FRAMES 64  /* frames per datagram */
#define MFS_WIRE_MAX_RANGES 16  /* SACK ranges per ACK frame */
#define MFS_WIRE_MAX_MEMBERS 32 /* entries per MEMBERS frame */

typedef struct mfs_wire_hdr {
    uint8_t version;
    uint8_t flags;  /* 0; in version 3 the kind (enum mfs_wire_kind) */
    uint32_t mesh;  /* low 32 bits of the mesh id */
    uint64_t src;   /* sender node id */
    uint64_t dst;   /* receiver node id, 0 = not known yet (HB only) */
    uint64_t epoch; /* sender boot epoch */
    uint64_t pn;    /* packet number, per (src, dst, epoch) */
} mfs_wire_hdr;

/* What a version 3 datagram is (its flags byte). */
enum mfs_wire_kind {
    MFS_WIRE_SEALED = 0,  /* frames under the pair's session key */
    MFS_WIRE_INIT = 1,    /* handshake message 1 (sync/hs.h) */
    MFS_WIRE_RESP = 2,    /* handshake message 2 */
    MFS_WIRE_COOKIE = 3,  /* "ask again with this cookie": a responder
                             under load (sync/hs.h) */
    MFS_WIRE_PROBE = 4,   /* "who is at this address?" (dst 0) */
    MFS_WIRE_ANSWER = 5,  /* "node src": the answer to a probe */
    MFS_WIRE_REMOVED = 6, /* "you were removed": the answer to the INIT
                             of a removed member (sync/hs.h) */
    MFS_WIRE_KIND_MAX = 6,
};

/* A heartbeat's clock flags: what the sender knows of its own clock. */
enum {
    /* its wall clock is behind stamps its store holds by more than the
     * bound: it is slow (peers do not take it as the mesh's time) */
    MFS_CLOCK_BEHIND = 1,
    /* its kernel says its clock is synchronized (NTP, chrony): preferred
     * over clocks that are not */
    MFS_CLOCK_SYNCED = 2,
};

enum mfs_frame_type {
    MFS_FR_PAD = 0,     /* rest of payload is padding */
    MFS_FR_HB = 1,      /* heartbeat: clock echo, member digest, wall clock */
    MFS_FR_ACK = 2,     /* selective ack of packet numbers */
    MFS_FR_DATA = 3,    /* one fragment of a message */
    MFS_FR_MEMBERS = 4, /* part of the sender's member list */
};

typedef struct mfs_member_entry {
    uint64_t id;
    uint8_t family;   /* 4 or 6 */
    uint8_t addr[16]; /* 4 or 16 bytes used */
    uint16_t port;    /* host order */
} mfs_member_entry;

typedef struct mfs_frame {
    uint8_t type;
    union {
        struct {
            uint32_t t_us;    /* sender clock, low 32 bits of us */
            uint32_t echo_us; /* last t_us received from the peer */
            uint32_t hold_us; /* time between receiving echo and now */
            uint32_t digest;  /* member-list digest */
            uint64_t wall_us; /* sender's wall clock at sending (0: none) */
            uint8_t clock;    /* sender's MFS_CLOCK_* flags */
        } hb;
        struct {
            uint64_t largest;
            uint32_t delay_us;
            uint8_t nranges;
            uint64_t lo[MFS_WIRE_MAX_RANGES]; /* inclusive, descending */
            uint64_t hi[MFS_WIRE_MAX_RANGES];
        } ack;
        struct {
            uint8_t mtype;
            uint64_t msg_id;
            uint64_t base; /* all ids below are delivered or dropped */
            uint32_t msg_len;
            uint32_t offset;
            uint16_t len;
            const uint8_t *bytes; /* points into the parsed buffer */
        } data;
        struct {
            uint8_t count;
            mfs_member_entry e[MFS_WIRE_MAX_MEMBERS];
        } members;
    } u;
} mfs_frame;

/* Decodes the cleartext header. Returns 0, -EBADMSG if dg is shorter than a
 * header plus tag or longer than MFS_WIRE_MAX, -EPROTO on another version,
 * non-zero flags in version 2, or an unknown kind in version 3. Reads only
 * dg[0..len). */
int mfs_wire_hdr_decode(const uint8_t *dg, size_t len, mfs_wire_hdr *h);

/* Writes h's MFS_WIRE_HDR bytes to out. */
void mfs_wire_hdr_encode(const mfs_wire_hdr *h, uint8_t *out);

/* Seals pt (ptlen <= MFS_WIRE_PAYLOAD_MAX) under key with header h into out
 * (MFS_WIRE_MAX bytes). The nonce is BLAKE2b-192 of the header, unique as
 * long as (src, dst, epoch, pn) never repeats. Returns the datagram length,
 * or -EMSGSIZE. */
int mfs_wire_seal(const uint8_t key[32], const mfs_wire_hdr *h,
                  const uint8_t *pt, size_t ptlen, uint8_t *out);

/* Verifies and decrypts dg into pt (MFS_WIRE_PAYLOAD_MAX bytes). Returns the
 * plaintext length, or -EBADMSG if the header is bad or the tag does not
 * verify (pt is then wiped). */
int mfs_wire_open(const uint8_t key[32], const uint8_t *dg, size_t len,
                  uint8_t *pt);

/* Parses and validates every frame of a decrypted payload into frames[]
 * (cap entries). Validation covers lengths, ranges, fragment geometry
 * (offset is a multiple of MFS_WIRE_FRAG, len is the full fragment),
 * max_msg (message length cap) and address families. Returns the number of
 * frames, or -EBADMSG with no guarantee about frames[] content. */
int mfs_wire_frames_parse(const uint8_t *pt, size_t len, uint32_t max_msg,
                          mfs_frame *frames, size_t cap);

/* Frame encoders: append to w (first error kept in w->err). */
void mfs_wire_put_hb(mfs_wbuf *w, uint32_t t_us, uint32_t echo_us,
                     uint32_t hold_us, uint32_t digest, uint64_t wall_us,
                     uint8_t clock);
/* ranges: nr inclusive [lo, hi] pairs, descending and disjoint, nr >= 1. */
void mfs_wire_put_ack(mfs_wbuf *w, uint32_t delay_us, const uint64_t *lo,
                      const uint64_t *hi, unsigned nr);
void mfs_wire_put_data(mfs_wbuf *w, uint8_t mtype, uint64_t msg_id,
                       uint64_t base, uint32_t msg_len, uint32_t offset,
                       const uint8_t *bytes, uint16_t len);
void mfs_wire_put_members(mfs_wbuf *w, const mfs_member_entry *e, unsigned n);
/* Bytes one member entry takes on the wire. */
size_t mfs_wire_member_size(const mfs_member_entry *e);

#endif
