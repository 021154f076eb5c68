/*
 * noise.c - Noise_IK_25519_ChaChaPoly_BLAKE2b (see noise.h), written from
 * the Noise specification's CipherState / SymmetricState / HandshakeState
 * with libsodium's primitives; tests/unit/test_sync_noise.c checks it
 * against vectors made by an independent implementation.
 *
 * Must never leave a secret behind in a state it failed or finished, nor
 * read a message past its length.
 */
#include "noise.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

#define NAME "Noise_IK_25519_ChaChaPoly_BLAKE2b"
#define BLOCK 128 /* BLAKE2b's block, HMAC's pad */

static void hash2(uint8_t out[64], const uint8_t *a, size_t alen,
                  const uint8_t *b, size_t blen)
{
    crypto_generichash_state g;
    crypto_generichash_init(&g, NULL, 0, 64);
    crypto_generichash_update(&g, a, alen);
    crypto_generichash_update(&g, b, blen);
    crypto_generichash_final(&g, out, 64);
}

/* HMAC-BLAKE2b (RFC 2104) with a key of at most 64 bytes. */
static void hmac(uint8_t out[64], const uint8_t *key, size_t klen,
                 const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    uint8_t pad[BLOCK], inner[64];
    crypto_generichash_state g;
    memset(pad, 0, sizeof(pad));
    memcpy(pad, key, klen);
    for (size_t i = 0; i < BLOCK; i++)
        pad[i] ^= 0x36;
    crypto_generichash_init(&g, NULL, 0, 64);
    crypto_generichash_update(&g, pad, BLOCK);
    crypto_generichash_update(&g, a, alen);
    crypto_generichash_update(&g, b, blen);
    crypto_generichash_final(&g, inner, 64);
    for (size_t i = 0; i < BLOCK; i++)
        pad[i] ^= 0x36 ^ 0x5c;
    hash2(out, pad, BLOCK, inner, 64);
    sodium_memzero(pad, sizeof(pad));
    sodium_memzero(inner, sizeof(inner));
}

/* HKDF(ck, ikm, 2): both outputs, 64 bytes each. */
static void hkdf2(const uint8_t ck[64], const uint8_t *ikm, size_t ilen,
                  uint8_t o1[64], uint8_t o2[64])
{
    uint8_t temp[64];
    static const uint8_t one = 1, two = 2;
    hmac(temp, ck, 64, ikm, ilen, NULL, 0);
    hmac(o1, temp, 64, &one, 1, NULL, 0);
    hmac(o2, temp, 64, o1, 64, &two, 1);
    sodium_memzero(temp, sizeof(temp));
}

static void mix_hash(mfs_noise *st, const uint8_t *data, size_t len)
{
    hash2(st->h, st->h, 64, data, len);
}

static void mix_key(mfs_noise *st, const uint8_t *ikm, size_t len)
{
    uint8_t o1[64], o2[64];
    hkdf2(st->ck, ikm, len, o1, o2);
    memcpy(st->ck, o1, 64);
    memcpy(st->k, o2, 32);
    sodium_memzero(o1, sizeof(o1));
    sodium_memzero(o2, sizeof(o2));
    st->n = 0;
    st->has_k = 1;
}

/* MixKey(DH(sec, pub)); -1 if pub is a point of small order. */
static int mix_dh(mfs_noise *st, const uint8_t sec[32], const uint8_t pub[32])
{
    uint8_t shared[32];
    int rc = crypto_scalarmult(shared, sec, pub);
    if (rc == 0)
        mix_key(st, shared, sizeof(shared));
    sodium_memzero(shared, sizeof(shared));
    return rc ? -1 : 0;
}

static void nonce_of(uint64_t n, uint8_t nonce[12])
{
    memset(nonce, 0, 4);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

/* EncryptAndHash: out gets len + 16 bytes (len without a key: never
 * here, every IK payload is sent under one). */
static void encrypt_hash(mfs_noise *st, const uint8_t *pt, size_t len,
                         uint8_t *out)
{
    uint8_t nonce[12];
    unsigned long long clen;
    nonce_of(st->n++, nonce);
    crypto_aead_chacha20poly1305_ietf_encrypt(out, &clen, pt, len, st->h, 64,
                                              NULL, nonce, st->k);
    mix_hash(st, out, (size_t)clen);
}

static int decrypt_hash(mfs_noise *st, const uint8_t *ct, size_t len,
                        uint8_t *out)
{
    uint8_t nonce[12];
    unsigned long long plen;
    nonce_of(st->n++, nonce);
    if (crypto_aead_chacha20poly1305_ietf_decrypt(out, &plen, NULL, ct, len,
                                                  st->h, 64, nonce, st->k))
        return -1;
    mix_hash(st, ct, len);
    return 0;
}

void mfs_noise_keypair_from(mfs_noise_keypair *kp, const uint8_t sec[32])
{
    memcpy(kp->sec, sec, 32);
    crypto_scalarmult_base(kp->pub, kp->sec);
}

void mfs_noise_keypair_new(mfs_noise_keypair *kp)
{
    uint8_t sec[32];
    randombytes_buf(sec, sizeof(sec));
    mfs_noise_keypair_from(kp, sec);
    sodium_memzero(sec, sizeof(sec));
}

static void start(mfs_noise *st, const mfs_noise_keypair *s,
                  const uint8_t *prologue, size_t plen)
{
    memset(st, 0, sizeof(*st));
    memcpy(st->h, NAME, sizeof(NAME) - 1); /* shorter than 64: padded */
    memcpy(st->ck, st->h, 64);
    mix_hash(st, prologue, plen);
    st->s = *s;
}

void mfs_noise_initiator(mfs_noise *st, const mfs_noise_keypair *s,
                         const uint8_t rs[32], const uint8_t *prologue,
                         size_t plen)
{
    start(st, s, prologue, plen);
    st->initiator = 1;
    memcpy(st->rs, rs, 32);
    mix_hash(st, st->rs, 32);
}

void mfs_noise_responder(mfs_noise *st, const mfs_noise_keypair *s,
                         const uint8_t *prologue, size_t plen)
{
    start(st, s, prologue, plen);
    mix_hash(st, st->s.pub, 32);
}

void mfs_noise_set_ephemeral(mfs_noise *st, const mfs_noise_keypair *e)
{
    st->e = *e;
    st->e_given = 1;
}

void mfs_noise_wipe(mfs_noise *st)
{
    sodium_memzero(st, sizeof(*st));
    st->step = -1;
}

static ssize_t fail(mfs_noise *st, ssize_t rc)
{
    mfs_noise_wipe(st);
    return rc;
}

/* Whose turn: message `msg` (1 or 2) written by the initiator or not. */
static int turn(const mfs_noise *st, int msg, int writing)
{
    if (st->step != msg - 1)
        return 0;
    return (msg == 1) == (st->initiator == writing);
}

static void new_ephemeral(mfs_noise *st)
{
    if (!st->e_given)
        mfs_noise_keypair_new(&st->e);
    st->e_given = 0;
}

ssize_t mfs_noise_write1(mfs_noise *st, const uint8_t *payload, size_t len,
                         uint8_t *out, size_t cap)
{
    if (!turn(st, 1, 1))
        return st->step < 0 ? -EPROTO : fail(st, -EPROTO);
    if (cap < MFS_NOISE_MSG1_LEN(len))
        return -ENOBUFS;
    new_ephemeral(st);
    memcpy(out, st->e.pub, 32); /* e */
    mix_hash(st, st->e.pub, 32);
    if (mix_dh(st, st->e.sec, st->rs)) /* es */
        return fail(st, -EPROTO);
    encrypt_hash(st, st->s.pub, 32, out + 32); /* s */
    if (mix_dh(st, st->s.sec, st->rs))         /* ss */
        return fail(st, -EPROTO);
    encrypt_hash(st, payload, len, out + 80);
    st->step = 1;
    return (ssize_t)MFS_NOISE_MSG1_LEN(len);
}

/* The start of reading message msg_no (min bytes without payload): its
 * turn, its length, and the sender's ephemeral key. 0 or the error. */
static ssize_t read_start(mfs_noise *st, int msg_no, size_t min,
                          const uint8_t *msg, size_t len, size_t cap)
{
    if (!turn(st, msg_no, 0))
        return st->step < 0 ? -EPROTO : fail(st, -EPROTO);
    if (len < min || cap < len - min)
        return fail(st, len < min ? -EBADMSG : -ENOBUFS);
    memcpy(st->re, msg, 32);
    mix_hash(st, st->re, 32);
    return 0;
}

ssize_t mfs_noise_read1(mfs_noise *st, const uint8_t *msg, size_t len,
                        uint8_t *out, size_t cap)
{
    ssize_t rc = read_start(st, 1, MFS_NOISE_MSG1_LEN(0), msg, len, cap);
    if (rc)
        return rc;
    if (mix_dh(st, st->s.sec, st->re) ||
        decrypt_hash(st, msg + 32, 48, st->rs) ||
        mix_dh(st, st->s.sec, st->rs) ||
        decrypt_hash(st, msg + 80, len - 80, out))
        return fail(st, -EBADMSG);
    st->step = 1;
    return (ssize_t)(len - MFS_NOISE_MSG1_LEN(0));
}

ssize_t mfs_noise_write2(mfs_noise *st, const uint8_t *payload, size_t len,
                         uint8_t *out, size_t cap)
{
    if (!turn(st, 2, 1))
        return st->step < 0 ? -EPROTO : fail(st, -EPROTO);
    if (cap < MFS_NOISE_MSG2_LEN(len))
        return -ENOBUFS;
    new_ephemeral(st);
    memcpy(out, st->e.pub, 32); /* e */
    mix_hash(st, st->e.pub, 32);
    if (mix_dh(st, st->e.sec, st->re) || /* ee */
        mix_dh(st, st->e.sec, st->rs))   /* se */
        return fail(st, -EPROTO);
    encrypt_hash(st, payload, len, out + 32);
    st->step = 2;
    return (ssize_t)MFS_NOISE_MSG2_LEN(len);
}

ssize_t mfs_noise_read2(mfs_noise *st, const uint8_t *msg, size_t len,
                        uint8_t *out, size_t cap)
{
    ssize_t rc = read_start(st, 2, MFS_NOISE_MSG2_LEN(0), msg, len, cap);
    if (rc)
        return rc;
    if (mix_dh(st, st->e.sec, st->re) || /* ee */
        mix_dh(st, st->s.sec, st->re) || /* se */
        decrypt_hash(st, msg + 32, len - 32, out))
        return fail(st, -EBADMSG);
    st->step = 2;
    return (ssize_t)(len - MFS_NOISE_MSG2_LEN(0));
}

int mfs_noise_split(mfs_noise *st, uint8_t send[32], uint8_t recv[32],
                    uint8_t hash[MFS_NOISE_HASH_LEN])
{
    if (st->step != 2)
        return (int)(st->step < 0 ? -EPROTO : fail(st, -EPROTO));
    uint8_t o1[64], o2[64];
    hkdf2(st->ck, NULL, 0, o1, o2);
    memcpy(st->initiator ? send : recv, o1, 32);
    memcpy(st->initiator ? recv : send, o2, 32);
    if (hash)
        memcpy(hash, st->h, 64);
    sodium_memzero(o1, sizeof(o1));
    sodium_memzero(o2, sizeof(o2));
    mfs_noise_wipe(st);
    return 0;
}
