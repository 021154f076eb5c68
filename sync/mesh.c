/*
 * mesh.c - mesh key file and invite tokens (see mesh.h).
 * Must never write a key file readable by others, never leave a partial key
 * file behind, and never change anything when a token does not parse.
 */
#include "mesh.h"

#include "codec.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEYFILE_MAGIC 0x4d46534bu /* "MFSK" */
#define KEYFILE_VERSION 1
#define KEYFILE_LEN (4 + 1 + 8 + MFS_MESH_KEY_LEN)
#define INVITE_PREFIX "mfs1."
#define INVITE_VERSION 1
#define INVITE_HOST_MAX 63

static int file_path(const char *dir, const char *name, char *buf, size_t cap)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    return (n < 0 || (size_t)n >= cap) ? -ENAMETOOLONG : 0;
}

int mfs_mesh_secret_write(const char *store_dir, const char *name,
                          const uint8_t *buf, size_t len)
{
    char path[PATH_MAX];
    int fd, rc = file_path(store_dir, name, path, sizeof(path));
    if (rc)
        return rc;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    if (write(fd, buf, len) != (ssize_t)len)
        rc = errno ? -errno : -EIO;
    else if (fsync(fd) != 0)
        rc = -errno;
    close(fd);
    if (rc)
        unlink(path);
    return rc;
}

ssize_t mfs_mesh_secret_read(const char *store_dir, const char *name,
                             uint8_t *buf, size_t cap)
{
    char path[PATH_MAX];
    struct stat st;
    int fd, rc = file_path(store_dir, name, path, sizeof(path));
    if (rc)
        return rc;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    if (fstat(fd, &st) != 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    if (st.st_mode & 077) {
        close(fd);
        return -EPERM;
    }
    ssize_t n = read(fd, buf, cap);
    if (n < 0)
        n = -errno;
    close(fd);
    return n;
}

int mfs_mesh_key_write(const char *store_dir, const struct mfs_mesh_key *k)
{
    uint8_t buf[KEYFILE_LEN];
    mfs_wbuf w;
    mfs_wbuf_init(&w, buf, sizeof(buf));
    mfs_put_u32(&w, KEYFILE_MAGIC);
    mfs_put_u8(&w, KEYFILE_VERSION);
    mfs_put_u64(&w, k->mesh_id);
    mfs_put_bytes(&w, k->key, MFS_MESH_KEY_LEN);
    int rc =
        w.err ? w.err
              : mfs_mesh_secret_write(store_dir, MFS_MESH_KEY_FILE, buf, w.len);
    sodium_memzero(buf, sizeof(buf));
    return rc;
}

int mfs_mesh_key_forget(const char *store_dir)
{
    struct mfs_mesh_key k;
    char from[PATH_MAX], to[PATH_MAX];
    int rc = mfs_mesh_key_load(store_dir, &k);
    if (rc)
        return rc;
    randombytes_buf(k.key, sizeof(k.key)); /* the mesh id stays */
    uint8_t buf[KEYFILE_LEN];
    mfs_wbuf w;
    mfs_wbuf_init(&w, buf, sizeof(buf));
    mfs_put_u32(&w, KEYFILE_MAGIC);
    mfs_put_u8(&w, KEYFILE_VERSION);
    mfs_put_u64(&w, k.mesh_id);
    mfs_put_bytes(&w, k.key, MFS_MESH_KEY_LEN);
    sodium_memzero(&k, sizeof(k));
    if ((rc = file_path(store_dir, MFS_MESH_KEY_FILE ".new", from,
                        sizeof(from))) ||
        (rc = file_path(store_dir, MFS_MESH_KEY_FILE, to, sizeof(to))))
        goto out;
    unlink(from); /* a crash's leftover */
    if ((rc = w.err ? w.err
                    : mfs_mesh_secret_write(store_dir, MFS_MESH_KEY_FILE ".new",
                                            buf, w.len)))
        goto out;
    if (rename(from, to) != 0) {
        rc = -errno;
        unlink(from);
        goto out;
    }
    int dfd = open(store_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        if (fsync(dfd) != 0)
            rc = -errno;
        close(dfd);
    }
out:
    sodium_memzero(buf, sizeof(buf));
    return rc;
}

int mfs_mesh_key_create(const char *store_dir)
{
    struct mfs_mesh_key k;
    int rc;

    if (sodium_init() < 0)
        return -EIO;
    randombytes_buf(k.key, sizeof(k.key));
    randombytes_buf(&k.mesh_id, sizeof(k.mesh_id));
    rc = mfs_mesh_key_write(store_dir, &k);
    sodium_memzero(&k, sizeof(k));
    return rc;
}

int mfs_mesh_key_load(const char *store_dir, struct mfs_mesh_key *out)
{
    uint8_t buf[KEYFILE_LEN + 1];
    mfs_rbuf r;
    ssize_t n =
        mfs_mesh_secret_read(store_dir, MFS_MESH_KEY_FILE, buf, sizeof(buf));
    if (n < 0)
        return (int)n;
    int rc = -EBADMSG;
    mfs_rbuf_init(&r, buf, (size_t)n);
    if (n == KEYFILE_LEN && mfs_get_u32(&r) == KEYFILE_MAGIC &&
        mfs_get_u8(&r) == KEYFILE_VERSION) {
        out->mesh_id = mfs_get_u64(&r);
        const uint8_t *key = mfs_get_bytes(&r, MFS_MESH_KEY_LEN);
        if (!r.err && key) {
            memcpy(out->key, key, MFS_MESH_KEY_LEN);
            rc = 0;
        }
    }
    sodium_memzero(buf, sizeof(buf));
    return rc;
}

int mfs_token_wrap(const char *prefix, uint8_t *body, size_t len, size_t cap,
                   char *out, size_t outcap)
{
    if (len + 4 > cap)
        return -ENOBUFS;
    crypto_generichash(body + len, 4, body, len, NULL, 0);
    len += 4;
    size_t pl = strlen(prefix);
    size_t need = pl + sodium_base64_ENCODED_LEN(
                           len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    if (need > outcap)
        return -ENOBUFS;
    memcpy(out, prefix, pl);
    sodium_bin2base64(out + pl, outcap - pl, body, len,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return (int)strlen(out);
}

ssize_t mfs_token_unwrap(const char *prefix, const char *token, uint8_t *body,
                         size_t cap)
{
    uint8_t check[4];
    size_t blen = 0, pl = strlen(prefix);
    if (!token || strncmp(token, prefix, pl) != 0)
        return -EINVAL;
    if (sodium_base642bin(body, cap, token + pl, strlen(token + pl), NULL,
                          &blen, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        blen < 4)
        return -EINVAL;
    crypto_generichash(check, 4, body, blen - 4, NULL, 0);
    if (memcmp(check, body + blen - 4, 4) != 0)
        return -EINVAL;
    return (ssize_t)(blen - 4);
}

/* Token body: ver u8 | mesh_id u64 | key[32] | host str16 | check[4], where
 * check is BLAKE2b-32 of the bytes before it (catches copy/paste damage). */
int mfs_invite_format(const struct mfs_mesh_key *k, const char *host_port,
                      char *out, size_t cap)
{
    uint8_t body[1 + 8 + MFS_MESH_KEY_LEN + 2 + INVITE_HOST_MAX + 4];
    size_t hl = host_port ? strlen(host_port) : 0;
    mfs_wbuf w;

    if (hl == 0 || hl > INVITE_HOST_MAX)
        return -EINVAL;
    mfs_wbuf_init(&w, body, sizeof(body));
    mfs_put_u8(&w, INVITE_VERSION);
    mfs_put_u64(&w, k->mesh_id);
    mfs_put_bytes(&w, k->key, MFS_MESH_KEY_LEN);
    mfs_put_str16(&w, host_port, hl);
    int rc = w.err ? w.err
                   : mfs_token_wrap(INVITE_PREFIX, body, w.len, sizeof(body),
                                    out, cap);
    sodium_memzero(body, sizeof(body));
    return rc;
}

int mfs_invite_parse(const char *token, struct mfs_mesh_key *k, char *host_port,
                     size_t cap)
{
    uint8_t body[1 + 8 + MFS_MESH_KEY_LEN + 2 + INVITE_HOST_MAX + 4];
    size_t hl = 0;
    mfs_rbuf r;
    ssize_t blen = mfs_token_unwrap(INVITE_PREFIX, token, body, sizeof(body));
    if (blen < 0)
        return -EINVAL;
    mfs_rbuf_init(&r, body, (size_t)blen);
    if (mfs_get_u8(&r) != INVITE_VERSION)
        return -EINVAL;
    uint64_t id = mfs_get_u64(&r);
    const uint8_t *key = mfs_get_bytes(&r, MFS_MESH_KEY_LEN);
    const uint8_t *host = mfs_get_str16(&r, &hl, INVITE_HOST_MAX);
    if (r.err || !key || !host || hl == 0 || mfs_rbuf_left(&r) != 0 ||
        hl + 1 > cap || memchr(host, 0, hl))
        return -EINVAL;
    k->mesh_id = id;
    memcpy(k->key, key, MFS_MESH_KEY_LEN);
    memcpy(host_port, host, hl);
    host_port[hl] = 0;
    sodium_memzero(body, sizeof(body));
    return 0;
}

int mfs_mesh_addr_parse(const char *host_port, void *ssp, unsigned *len)
{
    char host[64];
    const char *colon, *h = host_port;
    size_t hl;
    char *end;
    struct sockaddr_storage *ss = ssp;

    if (!host_port)
        return -EINVAL;
    colon = strrchr(host_port, ':');
    if (!colon || colon == host_port)
        return -EINVAL;
    hl = (size_t)(colon - host_port);
    if (h[0] == '[') {
        if (hl < 3 || h[hl - 1] != ']')
            return -EINVAL;
        h++;
        hl -= 2;
    }
    if (hl >= sizeof(host))
        return -EINVAL;
    memcpy(host, h, hl);
    host[hl] = 0;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (errno || *end || end == colon + 1 || port > 65535)
        return -EINVAL;
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof(*a4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*a6);
        return 0;
    }
    return -EINVAL;
}
