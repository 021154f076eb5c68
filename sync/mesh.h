/*
 * mesh.h - the mesh key and invite tokens.
 *
 * A mesh is defined by a 32-byte secret key and a random 64-bit mesh id,
 * kept in STORE_DIR/mesh.key (mode 0600). Every datagram is sealed with the
 * key (see wire.h); the low 32 bits of the id tag datagrams so that traffic
 * of another mesh is dropped before any crypto. An invite token carries the
 * key and one member's address on one line, for `meshfs join`.
 *
 * All functions are pure file/string helpers: callable from any thread,
 * they keep no state, and they never log secrets.
 */
#ifndef MFS_SYNC_MESH_H
#define MFS_SYNC_MESH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MFS_MESH_KEY_LEN 32
#define MFS_MESH_KEY_FILE "mesh.key"
/* Longest token mfs_invite_format() writes, with its NUL. */
#define MFS_INVITE_MAX 200

struct mfs_mesh_key {
    uint64_t mesh_id;
    uint8_t key[MFS_MESH_KEY_LEN];
};

/* Creates store_dir/mesh.key with a new random key and mesh id, mode 0600,
 * fsync'd. Returns 0, -EEXIST if the file exists (it is left alone), or
 * another negative errno from open/write (no partial file is left). */
int mfs_mesh_key_create(const char *store_dir);

/* Writes k to store_dir/mesh.key (for `meshfs join`). Same errors as
 * mfs_mesh_key_create(). k is borrowed. */
int mfs_mesh_key_write(const char *store_dir, const struct mfs_mesh_key *k);

/* Replaces the key in store_dir/mesh.key with a random one, keeping the
 * mesh id (a mesh that moved to per-node keys forgets its mesh key):
 * written aside, fsync'd, renamed over. 0 or -errno (the old file stays). */
int mfs_mesh_key_forget(const char *store_dir);

/* Reads store_dir/mesh.key into *out (caller-owned). Returns 0, -ENOENT if
 * absent, -EBADMSG if the file is not a mesh key, -EPERM if the file is
 * readable by group or others (refuses to use a leaked key). */
int mfs_mesh_key_load(const char *store_dir, struct mfs_mesh_key *out);

/* A secret file store_dir/name: written whole (len bytes, mode 0600,
 * fsync'd; -EEXIST if it exists, no partial file left on error), or read
 * (up to cap bytes; returns the length, -ENOENT, -EPERM if group or
 * others may read it, -errno). */
int mfs_mesh_secret_write(const char *store_dir, const char *name,
                          const uint8_t *buf, size_t len);
ssize_t mfs_mesh_secret_read(const char *store_dir, const char *name,
                             uint8_t *buf, size_t cap);

/* A token: prefix + base64url(body, check), check being BLAKE2b-32 of
 * body (catches copy/paste damage). wrap appends check to body (len
 * bytes, cap its room) and writes the token into out; returns its
 * length or -ENOBUFS. unwrap checks prefix and check and decodes the body
 * into body (cap bytes); returns its length (without check) or -EINVAL. */
int mfs_token_wrap(const char *prefix, uint8_t *body, size_t len, size_t cap,
                   char *out, size_t outcap);
ssize_t mfs_token_unwrap(const char *prefix, const char *token, uint8_t *body,
                         size_t cap);

/* Formats "mfs1." + base64url(version, mesh id, key, host_port, checksum)
 * into out (cap bytes; MFS_INVITE_MAX is always enough for a host_port of up
 * to 63 chars). Returns the token length, -EINVAL if host_port is empty or
 * longer than 63 bytes, -ENOBUFS if cap is too small. */
int mfs_invite_format(const struct mfs_mesh_key *k, const char *host_port,
                      char *out, size_t cap);

/* Parses a token. On success fills *k and host_port (NUL-terminated) and
 * returns 0. On any error (bad prefix, base64, version, checksum, length,
 * host_port not fitting in cap) returns -EINVAL and writes nothing to *k or
 * host_port. */
int mfs_invite_parse(const char *token, struct mfs_mesh_key *k, char *host_port,
                     size_t cap);

/* Splits "HOST:PORT" / "[V6]:PORT" into a sockaddr (struct sockaddr_storage
 * *, passed as void * to keep socket headers out). Numeric addresses only.
 * Returns 0 and the address length in *len, or -EINVAL. */
int mfs_mesh_addr_parse(const char *host_port, void *ss, unsigned *len);

#endif
