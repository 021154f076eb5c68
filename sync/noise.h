/*
 * noise.h - the handshake two members run to agree on session keys:
 * Noise_IK_25519_ChaChaPoly_BLAKE2b (noiseprotocol.org, revision 34).
 *
 *   <- s                       the initiator knows the responder's key
 *   ...
 *   -> e, es, s, ss            message 1: its ephemeral, its static key
 *                              encrypted, a payload
 *   <- e, ee, se               message 2: the responder's ephemeral, a
 *                              payload
 *
 * After message 2 both sides split the chaining key into two 32-byte
 * transport keys (one per direction). Each key comes from four X25519
 * results, two of them with ephemeral keys: a stolen long-term key does not
 * open sessions recorded before (forward secrecy). The responder learns the
 * initiator's static key from message 1 and must check it is a member's
 * before it answers; the initiator's payload is authenticated only by
 * message 2 coming back (IK: message 1 can be replayed, so what it carries
 * must be checked for freshness by the caller, as WireGuard's timestamp).
 *
 * Pure: no clock, no I/O, no allocation. A state that failed once stays
 * failed (every later call returns -EPROTO) and holds no secrets. Callers
 * serialise; any thread.
 */
#ifndef MFS_SYNC_NOISE_H
#define MFS_SYNC_NOISE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MFS_NOISE_KEY_LEN 32
#define MFS_NOISE_HASH_LEN 64
#define MFS_NOISE_TAG_LEN 16
/* The sizes of the two messages around a payload of n bytes. */
#define MFS_NOISE_MSG1_LEN(n) (32 + 32 + 16 + (n) + 16)
#define MFS_NOISE_MSG2_LEN(n) (32 + (n) + 16)

typedef struct mfs_noise_keypair {
    uint8_t pub[MFS_NOISE_KEY_LEN];
    uint8_t sec[MFS_NOISE_KEY_LEN];
} mfs_noise_keypair;

typedef struct mfs_noise {
    uint8_t ck[MFS_NOISE_HASH_LEN]; /* chaining key */
    uint8_t h[MFS_NOISE_HASH_LEN];  /* handshake hash */
    uint8_t k[MFS_NOISE_KEY_LEN];
    uint64_t n;
    int has_k;
    int initiator;
    int step; /* messages done (0..2); -1 failed */
    int e_given;
    mfs_noise_keypair s, e;
    uint8_t rs[MFS_NOISE_KEY_LEN]; /* the other side's static key */
    uint8_t re[MFS_NOISE_KEY_LEN];
} mfs_noise;

/* A new X25519 key pair from the system's random source. */
void mfs_noise_keypair_new(mfs_noise_keypair *kp);
/* The key pair whose secret is sec (32 bytes; clamped as X25519 does). */
void mfs_noise_keypair_from(mfs_noise_keypair *kp, const uint8_t sec[32]);

/* Starts a handshake as initiator towards the holder of rs, or as
 * responder, with static key s (copied) and prologue (both sides must give
 * the same bytes, or message 1 fails to open). */
void mfs_noise_initiator(mfs_noise *st, const mfs_noise_keypair *s,
                         const uint8_t rs[32], const uint8_t *prologue,
                         size_t plen);
void mfs_noise_responder(mfs_noise *st, const mfs_noise_keypair *s,
                         const uint8_t *prologue, size_t plen);
/* Tests only: the ephemeral key the next message sends, instead of a
 * random one. */
void mfs_noise_set_ephemeral(mfs_noise *st, const mfs_noise_keypair *e);

/* Initiator: writes message 1 carrying payload (len bytes) into out (cap
 * bytes). Returns its length, -ENOBUFS if cap is short, -EPROTO out of
 * turn or failed. */
ssize_t mfs_noise_write1(mfs_noise *st, const uint8_t *payload, size_t len,
                         uint8_t *out, size_t cap);
/* Responder: opens message 1, the payload into out (cap bytes; at least
 * len - MFS_NOISE_MSG1_LEN(0)); the initiator's static key is then in
 * st->rs. Returns the payload length or -EBADMSG (bad length, not made
 * for our key or this prologue, tampered) and the state is failed. */
ssize_t mfs_noise_read1(mfs_noise *st, const uint8_t *msg, size_t len,
                        uint8_t *out, size_t cap);
/* Responder: writes message 2 (as write1). */
ssize_t mfs_noise_write2(mfs_noise *st, const uint8_t *payload, size_t len,
                         uint8_t *out, size_t cap);
/* Initiator: opens message 2 (as read1). */
ssize_t mfs_noise_read2(mfs_noise *st, const uint8_t *msg, size_t len,
                        uint8_t *out, size_t cap);

/* After both messages: the key this side sends with and the one it
 * receives with, and the handshake hash (may be NULL), which names the
 * session on both sides. Wipes st. 0, or -EPROTO if not done. */
int mfs_noise_split(mfs_noise *st, uint8_t send[32], uint8_t recv[32],
                    uint8_t hash[MFS_NOISE_HASH_LEN]);
/* Forgets every secret in st. */
void mfs_noise_wipe(mfs_noise *st);

#endif
