/*
 * ident.h - a node's identity: its long-term key pair, kept in
 * STORE_DIR/node.key (mode 0600), and the member records that bind a node
 * id to a public key in the replicated member registry.
 *
 * The key pair is Ed25519 (member records are signed with it); the
 * handshake (noise.h) uses its X25519 form. A member record says "node N
 * of mesh M has public key K; admitted by node A", signed by A (a node's
 * own record, made by `meshfs init` or when a mesh moves to per-node
 * keys, is signed by itself). The store keeps the records' bytes
 * (mfs_store_member_key_put); sync/ checks them.
 *
 * Pure file and byte helpers: any thread, no state, no secrets logged.
 */
#ifndef MFS_SYNC_IDENT_H
#define MFS_SYNC_IDENT_H

#include "noise.h"

#include <stddef.h>
#include <stdint.h>

#define MFS_IDENT_FILE "node.key"
#define MFS_IDENT_PK_LEN 32
/* "1a2b-3c4d-5e6f-7a8b" and its NUL */
#define MFS_IDENT_FPR_LEN 20
#define MFS_MEMBER_REC_LEN (1 + 8 + 8 + 32 + 8 + 64)

typedef struct mfs_ident {
    uint64_t node;                /* the node it is the key of */
    uint8_t pk[MFS_IDENT_PK_LEN]; /* Ed25519 public key */
    uint8_t sk[64];               /* Ed25519 secret key */
    mfs_noise_keypair dh;         /* its X25519 form, for the handshake */
} mfs_ident;

typedef struct mfs_member_rec {
    uint64_t mesh_id, node;
    uint8_t pk[MFS_IDENT_PK_LEN];
    uint64_t by; /* the member that admitted it (itself: founding) */
} mfs_member_rec;

/* Creates store_dir/node.key with a new key pair for node (0600,
 * fsync'd). 0, -EEXIST (left alone) or -errno; no partial file is left. */
int mfs_ident_create(const char *store_dir, uint64_t node);
/* Reads store_dir/node.key into *out. 0, -ENOENT, -EPERM (readable by
 * group or others: refused), -EBADMSG (not a node key). */
int mfs_ident_load(const char *store_dir, mfs_ident *out);
/* Forgets the secrets in id. */
void mfs_ident_wipe(mfs_ident *id);

/* The short fingerprint people compare: 64 bits of BLAKE2b(pk) as four
 * groups of hex digits. */
void mfs_ident_fingerprint(const uint8_t pk[MFS_IDENT_PK_LEN],
                           char out[MFS_IDENT_FPR_LEN]);
/* The X25519 public key of Ed25519 key pk. 0, or -EINVAL if pk is not a
 * valid point. */
int mfs_ident_dh_pub(const uint8_t pk[MFS_IDENT_PK_LEN], uint8_t out[32]);

/* Writes r's record, signed by admitter (whose key must be the one r->by
 * names in the registry, or r->pk itself when r->by == r->node). */
void mfs_member_rec_make(const mfs_member_rec *r, const mfs_ident *admitter,
                         uint8_t out[MFS_MEMBER_REC_LEN]);
/* Parses a record (no signature check). 0 or -EBADMSG. */
int mfs_member_rec_parse(const uint8_t *rec, size_t len, mfs_member_rec *r);
/* Checks rec's signature against signer_pk. 0 or -EBADMSG. */
int mfs_member_rec_verify(const uint8_t *rec, size_t len,
                          const uint8_t signer_pk[MFS_IDENT_PK_LEN]);

#endif
