/*
 * ident.c - node key file, fingerprints and member records (see ident.h).
 * Must never write a key file others can read, nor accept a record whose
 * bytes or signature do not check.
 */
#include "ident.h"

#include "codec.h"
#include "mesh.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define IDENT_MAGIC 0x4d46534eu /* "MFSN" */
#define IDENT_VERSION 1
#define IDENT_LEN (4 + 1 + 8 + 32)
#define REC_VERSION 1
#define REC_SIGNED (MFS_MEMBER_REC_LEN - 64)

static int ident_from_seed(const uint8_t seed[32], mfs_ident *out)
{
    uint8_t x[32];
    crypto_sign_seed_keypair(out->pk, out->sk, seed);
    if (crypto_sign_ed25519_sk_to_curve25519(x, out->sk))
        return -EBADMSG;
    mfs_noise_keypair_from(&out->dh, x);
    sodium_memzero(x, sizeof(x));
    return 0;
}

int mfs_ident_create(const char *store_dir, uint64_t node)
{
    uint8_t buf[IDENT_LEN];
    mfs_wbuf w;
    if (sodium_init() < 0)
        return -EIO;
    mfs_wbuf_init(&w, buf, sizeof(buf));
    mfs_put_u32(&w, IDENT_MAGIC);
    mfs_put_u8(&w, IDENT_VERSION);
    mfs_put_u64(&w, node);
    randombytes_buf(buf + w.len, 32);
    w.len += 32;
    int rc = mfs_mesh_secret_write(store_dir, MFS_IDENT_FILE, buf, w.len);
    sodium_memzero(buf, sizeof(buf));
    return rc;
}

int mfs_ident_load(const char *store_dir, mfs_ident *out)
{
    uint8_t buf[IDENT_LEN + 1];
    if (sodium_init() < 0)
        return -EIO;
    ssize_t n =
        mfs_mesh_secret_read(store_dir, MFS_IDENT_FILE, buf, sizeof(buf));
    if (n < 0)
        return (int)n;
    mfs_rbuf r;
    mfs_rbuf_init(&r, buf, (size_t)n);
    int rc = -EBADMSG;
    if (n == IDENT_LEN && mfs_get_u32(&r) == IDENT_MAGIC &&
        mfs_get_u8(&r) == IDENT_VERSION) {
        out->node = mfs_get_u64(&r);
        rc = out->node ? ident_from_seed(buf + 13, out) : -EBADMSG;
    }
    sodium_memzero(buf, sizeof(buf));
    return rc;
}

void mfs_ident_wipe(mfs_ident *id)
{
    sodium_memzero(id, sizeof(*id));
}

void mfs_ident_fingerprint(const uint8_t pk[MFS_IDENT_PK_LEN],
                           char out[MFS_IDENT_FPR_LEN])
{
    uint8_t h[16];
    crypto_generichash(h, sizeof(h), pk, MFS_IDENT_PK_LEN,
                       (const uint8_t *)"meshfs fpr", 10);
    snprintf(out, MFS_IDENT_FPR_LEN, "%02x%02x-%02x%02x-%02x%02x-%02x%02x",
             h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]);
}

int mfs_ident_dh_pub(const uint8_t pk[MFS_IDENT_PK_LEN], uint8_t out[32])
{
    return crypto_sign_ed25519_pk_to_curve25519(out, pk) ? -EINVAL : 0;
}

static void rec_body(const mfs_member_rec *r, uint8_t out[REC_SIGNED])
{
    mfs_wbuf w;
    mfs_wbuf_init(&w, out, REC_SIGNED);
    mfs_put_u8(&w, REC_VERSION);
    mfs_put_u64(&w, r->mesh_id);
    mfs_put_u64(&w, r->node);
    mfs_put_bytes(&w, r->pk, MFS_IDENT_PK_LEN);
    mfs_put_u64(&w, r->by);
}

void mfs_member_rec_make(const mfs_member_rec *r, const mfs_ident *admitter,
                         uint8_t out[MFS_MEMBER_REC_LEN])
{
    rec_body(r, out);
    crypto_sign_detached(out + REC_SIGNED, NULL, out, REC_SIGNED, admitter->sk);
}

int mfs_member_rec_parse(const uint8_t *rec, size_t len, mfs_member_rec *r)
{
    if (len != MFS_MEMBER_REC_LEN)
        return -EBADMSG;
    mfs_rbuf b;
    mfs_rbuf_init(&b, rec, len);
    if (mfs_get_u8(&b) != REC_VERSION)
        return -EBADMSG;
    r->mesh_id = mfs_get_u64(&b);
    r->node = mfs_get_u64(&b);
    const uint8_t *pk = mfs_get_bytes(&b, MFS_IDENT_PK_LEN);
    r->by = mfs_get_u64(&b);
    if (b.err || !pk || !r->node || !r->by)
        return -EBADMSG;
    memcpy(r->pk, pk, MFS_IDENT_PK_LEN);
    return 0;
}

int mfs_member_rec_verify(const uint8_t *rec, size_t len,
                          const uint8_t signer_pk[MFS_IDENT_PK_LEN])
{
    if (len != MFS_MEMBER_REC_LEN)
        return -EBADMSG;
    return crypto_sign_verify_detached(rec + REC_SIGNED, rec, REC_SIGNED,
                                       signer_pk)
               ? -EBADMSG
               : 0;
}
