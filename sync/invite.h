/*
 * invite.h - invitations to a mesh of per-node keys.
 *
 * `meshfs invite` makes an invitation: a random id and secret, kept in
 * STORE_DIR/invites with its expiry and how many joins it has left, and
 * printed as a token "mfs2." + base64url(version 2, mesh id, the
 * inviter's node id, public key and address, invitation id, secret,
 * check). The token carries no key that protects traffic: the joiner
 * makes its own key pair, and its first handshake with the inviter
 * carries a join proof (the invitation id, its public key, and a MAC of
 * mesh, node and key under the secret), encrypted to the inviter. The
 * inviter admits it once the proof checks and the invitation is open,
 * then writes its member record (ident.h). STORE_DIR/joining keeps the
 * joiner's side (inviter, address, proof) until it holds its own record.
 *
 * Pure file and byte helpers; any thread. The invitations file is
 * changed under an exclusive lock (flock) so that the CLI and a running
 * daemon do not lose each other's changes.
 */
#ifndef MFS_SYNC_INVITE_H
#define MFS_SYNC_INVITE_H

#include "ident.h"

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MFS_INVITE2_PREFIX "mfs2."
#define MFS_INVITE2_MAX 240 /* longest token, with its NUL */
#define MFS_INVITES_FILE "invites"
#define MFS_JOINING_FILE "joining"
#define MFS_INVITE_ID_LEN 16
#define MFS_JOIN_LEN (MFS_INVITE_ID_LEN + MFS_IDENT_PK_LEN + 32)

typedef struct mfs_invite {
    uint64_t mesh_id, by; /* the mesh; the inviting node */
    uint8_t by_pk[MFS_IDENT_PK_LEN];
    uint8_t id[MFS_INVITE_ID_LEN];
    uint8_t secret[32];
    char host_port[64]; /* the inviter's address */
} mfs_invite;

/* An open invitation as STORE_DIR/invites keeps it. */
typedef struct mfs_invite_rec {
    uint8_t id[MFS_INVITE_ID_LEN];
    uint8_t secret[32];
    int64_t created, expires; /* unix seconds */
    uint32_t uses;            /* joins left */
} mfs_invite_rec;

/* The token of iv into out (MFS_INVITE2_MAX). Its length, -EINVAL (no
 * address or one longer than 63 bytes), -ENOBUFS. */
int mfs_invite2_format(const mfs_invite *iv, char *out, size_t cap);
/* Parses a token into *iv. 0 or -EINVAL (nothing written). */
int mfs_invite2_parse(const char *token, mfs_invite *iv);

/* The join proof node (key pk) sends with its first handshake. */
void mfs_join_make(const mfs_invite *iv, uint64_t node,
                   const uint8_t pk[MFS_IDENT_PK_LEN],
                   uint8_t out[MFS_JOIN_LEN]);
/* Splits join bytes: the invitation id and the joiner's key. 0 or
 * -EBADMSG. */
int mfs_join_parse(const uint8_t *join, size_t len,
                   uint8_t id[MFS_INVITE_ID_LEN], uint8_t pk[MFS_IDENT_PK_LEN]);
/* 0 if join was made with secret for node in mesh_id, else -EACCES. */
int mfs_join_check(const uint8_t *join, size_t len, const uint8_t secret[32],
                   uint64_t mesh_id, uint64_t node);

/* Moving a mesh from its mesh key to per-node keys (docs/WIRE.md): while
 * STORE_DIR/migrating exists the node proves with every handshake that it
 * holds the mesh key k: a join proof with the invitation id all zero.
 * check: 0 if join is such a proof for node, else -EACCES. */
#define MFS_MIGRATING_FILE "migrating"
struct mfs_mesh_key;
void mfs_migrate_proof(const struct mfs_mesh_key *k, uint64_t node,
                       const uint8_t pk[MFS_IDENT_PK_LEN],
                       uint8_t out[MFS_JOIN_LEN]);
int mfs_join_is_migrate(const uint8_t *join, size_t len);
int mfs_migrate_check(const struct mfs_mesh_key *k, const uint8_t *join,
                      size_t len, uint64_t node);

/* Adds rec to store_dir/invites (created 0600 if missing). 0 or -errno. */
int mfs_invites_add(const char *store_dir, const mfs_invite_rec *rec);
/* Lists the open invitations (not expired, uses left): up to cap into
 * out; returns how many there are, or -errno. The file forgets used-up
 * ones, and expired ones a week after (until then a join with one is
 * refused as expired). */
ssize_t mfs_invites_list(const char *store_dir, int64_t now,
                         mfs_invite_rec *out, size_t cap);
/* Removes the invitations whose id (hex) starts with prefix. Returns how
 * many, or -errno. */
int mfs_invites_revoke(const char *store_dir, const char *prefix);
/* Takes one use of invitation id if it is open at now: *rec gets it (its
 * secret to check the proof with) and its uses drop by one (it is gone
 * at zero). 0, -ENOENT (no such invitation, used up or revoked),
 * -ETIMEDOUT (expired), -errno. */
int mfs_invites_take(const char *store_dir, const uint8_t id[MFS_INVITE_ID_LEN],
                     int64_t now, mfs_invite_rec *rec);
/* Gives a use back (the proof did not check after all). */
int mfs_invites_give_back(const char *store_dir, const mfs_invite_rec *rec);

/* STORE_DIR/joining: written by `meshfs join` (0600), read by the mount,
 * removed once the node holds its own member record. */
typedef struct mfs_joining {
    uint64_t by;
    uint8_t by_pk[MFS_IDENT_PK_LEN];
    char host_port[64];
    uint8_t join[MFS_JOIN_LEN];
} mfs_joining;
int mfs_joining_write(const char *store_dir, const mfs_joining *j);
/* 0, -ENOENT, -EBADMSG, -EPERM (readable by others). */
int mfs_joining_read(const char *store_dir, mfs_joining *j);
int mfs_joining_remove(const char *store_dir);

#endif
