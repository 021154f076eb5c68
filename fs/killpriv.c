/*
 * killpriv.c - FUSE_HANDLE_KILLPRIV_V2 under libfuse 3.14, which does not
 * know the flag: the session's reads and writes of /dev/fuse go through
 * these two functions (fuse_session_custom_io), which
 *   - answer the kernel's INIT offer of FUSE_HANDLE_KILLPRIV_V2 by setting
 *     the flag in libfuse's INIT reply. The kernel then marks the super
 *     block SB_NOSEC and stops asking for security.capability (a GETXATTR
 *     round trip) on every write(2); in exchange the file system clears
 *     setuid/setgid and security.capability itself when the kernel says so;
 *   - carry the kernel's "kill suid/sgid" flags of WRITE
 *     (FUSE_WRITE_KILL_SUIDGID), OPEN and CREATE (FUSE_OPEN_KILL_SUIDGID),
 *     which libfuse 3.14 drops, into the open flags libfuse does pass on
 *     (fi->flags), as MFS_FS_KILL_SUIDGID. SETATTR's FATTR_KILL_SUIDGID
 *     reaches the handler through libfuse (FUSE_SET_ATTR_KILL_SUID).
 * It only reads and rewrites headers in place; it never changes a
 * request's length, never blocks beyond read(2)/writev(2), and must never
 * call into libfuse or the store. docs/FS.md, "Permissions".
 */
#include "fs.h"

#include <linux/fuse.h>

#include <stddef.h>
#include <string.h>
#include <unistd.h>

_Static_assert(MFS_FS_KILL_SUIDGID > 0x400000 &&
                   MFS_FS_KILL_SUIDGID <= 0x40000000,
               "the marker must not be an open(2) flag");

#define BODY(h) ((char *)(h) + sizeof(struct fuse_in_header))

void mfs_fs_killpriv_init(mfs_fs_killpriv *kp, const void *buf, size_t n)
{
    const struct fuse_in_header *h = buf;
    if (n < sizeof *h || h->opcode != FUSE_INIT)
        return;
    const struct fuse_init_in *in = (const void *)((const char *)h + sizeof *h);
    if (n - sizeof *h >=
            offsetof(struct fuse_init_in, flags) + sizeof in->flags &&
        (in->flags & FUSE_HANDLE_KILLPRIV_V2))
        __atomic_store_n(&kp->init_unique, h->unique, __ATOMIC_RELEASE);
}

ssize_t mfs_fs_killpriv_read(mfs_fs_killpriv *kp, int fd, void *buf, size_t len)
{
    ssize_t n = read(fd, buf, len);
    if (n < (ssize_t)sizeof(struct fuse_in_header))
        return n;
    struct fuse_in_header *h = buf;
    size_t body = (size_t)n - sizeof *h;
    switch (h->opcode) {
    case FUSE_INIT:
        mfs_fs_killpriv_init(kp, buf, (size_t)n);
        break;
    case FUSE_WRITE: {
        struct fuse_write_in *in = (void *)BODY(h);
        if (body >= offsetof(struct fuse_write_in, flags) + sizeof in->flags &&
            (in->write_flags & FUSE_WRITE_KILL_SUIDGID))
            in->flags |= MFS_FS_KILL_SUIDGID;
        break;
    }
    case FUSE_OPEN: {
        struct fuse_open_in *in = (void *)BODY(h);
        if (body >= sizeof *in && (in->open_flags & FUSE_OPEN_KILL_SUIDGID))
            in->flags |= MFS_FS_KILL_SUIDGID;
        break;
    }
    case FUSE_CREATE: {
        struct fuse_create_in *in = (void *)BODY(h);
        if (body >= offsetof(struct fuse_create_in, open_flags) +
                        sizeof in->open_flags &&
            (in->open_flags & FUSE_OPEN_KILL_SUIDGID))
            in->flags |= MFS_FS_KILL_SUIDGID;
        break;
    }
    default:
        break;
    }
    return n;
}

ssize_t mfs_fs_killpriv_writev(mfs_fs_killpriv *kp, int fd, struct iovec *iov,
                               int count)
{
    uint64_t init = __atomic_load_n(&kp->init_unique, __ATOMIC_ACQUIRE);
    if (init && count >= 2 &&
        iov[0].iov_len >= sizeof(struct fuse_out_header)) {
        struct fuse_out_header *o = iov[0].iov_base;
        if (o->unique == init) {
            struct fuse_init_out *out = iov[1].iov_base;
            if (o->error == 0 && kp->want &&
                iov[1].iov_len >=
                    offsetof(struct fuse_init_out, flags) + sizeof out->flags) {
                out->flags |= FUSE_HANDLE_KILLPRIV_V2;
                __atomic_store_n(&kp->on, 1, __ATOMIC_RELEASE);
            }
            __atomic_store_n(&kp->init_unique, 0, __ATOMIC_RELEASE);
        }
    }
    return writev(fd, iov, count);
}
