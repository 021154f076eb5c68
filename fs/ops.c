/*
 * ops.c - the FUSE low-level operations: each one turns a kernel request
 * into store calls and sends exactly one reply on every path.
 *
 * Permission checks are the kernel's (mount option default_permissions):
 * mode bits, owner, supplementary groups, sticky directories, and the
 * setattr rules for chmod/chown/utimes. Here we add what the kernel leaves
 * to the file system: ownership of new nodes from the request, setgid
 * directory inheritance, lookup counts, publishing on close.
 *
 * Must never: block on the network, keep a store pointer to request memory
 * after replying, or reply twice.
 */
#define FUSE_USE_VERSION 312
#include "fs.h"
#include "log.h"

#include <fuse_lowlevel.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#ifndef FALLOC_FL_KEEP_SIZE
#define FALLOC_FL_KEEP_SIZE 0x01
#endif
#ifndef FALLOC_FL_PUNCH_HOLE
#define FALLOC_FL_PUNCH_HOLE 0x02
#endif

#define READDIR_BATCH 128

static mfs_fs *fs_of(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

/* Every request but a WRITE (and FORGET, STATFS) first waits for the
 * writes answered before it to be applied (fs/wb.c). */
static void wb_wait(fuse_req_t req)
{
    mfs_fs_wb_before(&fs_of(req)->wb);
}

static void ns_to_ts(int64_t ns, struct timespec *ts)
{
    int64_t s = ns / 1000000000;
    int64_t r = ns % 1000000000;
    if (r < 0) {
        r += 1000000000;
        s -= 1;
    }
    ts->tv_sec = (time_t)s;
    ts->tv_nsec = (long)r;
}

static int64_t ts_to_ns(const struct timespec *ts)
{
    return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

static void attr_to_stat(const mfs_attr *a, struct stat *st)
{
    memset(st, 0, sizeof *st);
    st->st_ino = a->ino;
    st->st_mode = a->mode;
    st->st_nlink = a->nlink;
    st->st_uid = a->uid;
    st->st_gid = a->gid;
    st->st_rdev = a->rdev;
    st->st_size = (off_t)a->size;
    st->st_blocks = (blkcnt_t)a->blocks;
    st->st_blksize = MFS_CHUNK_SIZE;
    ns_to_ts(a->atime_ns, &st->st_atim);
    ns_to_ts(a->mtime_ns, &st->st_mtim);
    ns_to_ts(a->ctime_ns, &st->st_ctim);
}

static void fill_entry(mfs_fs *fs, const mfs_attr *a,
                       struct fuse_entry_param *e)
{
    memset(e, 0, sizeof *e);
    e->ino = a->ino;
    e->generation = 1;
    attr_to_stat(a, &e->attr);
    e->attr_timeout = fs->cfg.attr_timeout;
    e->entry_timeout = fs->cfg.entry_timeout;
}

/* Replies with an entry and counts the kernel's new reference. */
static void reply_entry(fuse_req_t req, const mfs_attr *a)
{
    mfs_fs *fs = fs_of(req);
    struct fuse_entry_param e;
    fill_entry(fs, a, &e);
    if (mfs_fs_inodes_ref(&fs->inodes, a->ino, 1) < 0) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    if (fuse_reply_entry(req, &e) != 0) {
        /* the kernel did not take the reference (interrupted request) */
        if (mfs_fs_inodes_unref(&fs->inodes, a->ino, 1))
            mfs_store_forget(fs->store, a->ino);
    }
}

static void reply_attr(fuse_req_t req, const mfs_attr *a)
{
    struct stat st;
    attr_to_stat(a, &st);
    fuse_reply_attr(req, &st, fs_of(req)->cfg.attr_timeout);
}

/* What a local file system does to a file written, truncated or chown'ed
 * by a caller without CAP_FSETID (FUSE_HANDLE_KILLPRIV_V2: the kernel asks
 * us): clear setuid and setgid (see below), drop security.capability.
 * Returns 1 if something changed (the kernel's cached mode is then stale),
 * 0 if not, or -errno. */
static int in_group(fuse_req_t req, gid_t gid);

static int kill_suidgid(fuse_req_t req, uint64_t ino)
{
    mfs_fs *fs = fs_of(req);
    mfs_attr a;
    int changed = 0;
    int r = mfs_store_getattr(fs->store, ino, &a);
    if (r < 0)
        return r;
    uint32_t mode = a.mode & ~(uint32_t)S_ISUID;
    /* setgid without group-execute marks mandatory locking: it goes only
     * when the caller is neither in the group nor privileged (as
     * setattr_should_drop_sgid) */
    if ((a.mode & S_ISGID) &&
        ((a.mode & S_IXGRP) ||
         (fuse_req_ctx(req)->uid != 0 && !in_group(req, a.gid))))
        mode &= ~(uint32_t)S_ISGID;
    if (mode != a.mode) {
        mfs_setattr sa;
        memset(&sa, 0, sizeof sa);
        sa.mask = MFS_SET_MODE;
        sa.mode = mode;
        r = mfs_store_setattr(fs->store, ino, &sa, &a);
        if (r < 0)
            return r;
        changed = 1;
    }
    if (mfs_store_getxattr(fs->store, ino, "security.capability", NULL, 0) >=
        0) {
        r = mfs_store_removexattr(fs->store, ino, "security.capability");
        if (r < 0 && r != -ENODATA)
            return r;
        changed = 1;
    }
    return changed;
}

static int err_of(long r)
{
    if (r >= 0)
        return 0;
    return (int)-r;
}

/* ---- init and lookup counts ------------------------------------------- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    mfs_fs *fs = userdata;
    if (fs->cfg.writeback_cache && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
        conn->want |= FUSE_CAP_WRITEBACK_CACHE;
    if (conn->capable & FUSE_CAP_READDIRPLUS)
        conn->want |= FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO;
    if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
        conn->want |= FUSE_CAP_PARALLEL_DIROPS;
    if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
        conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
    /* page cache: every local change goes through this kernel and every
     * remote one is invalidated explicitly (mfs_fs_change_cb), so the
     * kernel need not drop pages whenever it sees a new mtime or size */
    if (conn->capable & FUSE_CAP_EXPLICIT_INVAL_DATA) {
        conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;
        conn->want |= FUSE_CAP_EXPLICIT_INVAL_DATA;
    }
    /* suid/sgid clearing on write, truncate and chown is left to the kernel
     * (it sends a SETATTR of the mode): writeback writes carry no caller. */
    conn->want &= ~(unsigned)FUSE_CAP_HANDLE_KILLPRIV;
    /* locks: not implemented here, so the kernel enforces flock and fcntl
     * locks within this mount only (DESIGN P4). */
    conn->want &= ~(unsigned)(FUSE_CAP_POSIX_LOCKS | FUSE_CAP_FLOCK_LOCKS);
    /* ACL xattrs are stored, not interpreted (docs/FS.md) */
    conn->want &= ~(unsigned)FUSE_CAP_POSIX_ACL;
    if (fs->cfg.max_write)
        conn->max_write = fs->cfg.max_write;
    conn->max_readahead = fs->cfg.max_write ? fs->cfg.max_write : 1u << 20;
    conn->time_gran = 1;
    mfs_log(LOG_INFO,
            "fs: init: kernel proto %u.%u, writeback=%d, "
            "max_write=%u (killpriv_v2 is set in the reply by fs/killpriv.c)",
            conn->proto_major, conn->proto_minor,
            !!(conn->want & FUSE_CAP_WRITEBACK_CACHE), conn->max_write);
}

static void forget_one(mfs_fs *fs, uint64_t ino, uint64_t n)
{
    if (ino == FUSE_ROOT_ID)
        return;
    if (mfs_fs_inodes_unref(&fs->inodes, ino, n)) {
        mfs_fs_files_forget(&fs->files, ino);
        mfs_store_forget(fs->store, ino);
    }
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    forget_one(fs_of(req), ino, nlookup);
    fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count,
                            struct fuse_forget_data *forgets)
{
    mfs_fs *fs = fs_of(req);
    for (size_t i = 0; i < count; i++)
        forget_one(fs, forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
}

/* ---- names and attributes --------------------------------------------- */

/* After a reply that named ino (and, for a lookup, name in parent): if a
 * remote change of either landed while the reply was built from the store
 * (after `since`), the kernel may cache what the reply said after the
 * change's own invalidation went by (a new inode is not in the kernel
 * until it has processed the reply, so that invalidation found nothing).
 * Queue the invalidation again; the sender retries it while the kernel is
 * still instantiating the inode (fs.c). */
static void reply_raced(mfs_fs *fs, uint64_t since, uint64_t ino,
                        uint64_t parent, const char *name)
{
    if (mfs_fs_invalq_seq(&fs->invalq) == since)
        return; /* nothing changed meanwhile: the common case */
    if (ino && mfs_fs_invalq_changed(&fs->invalq, since, MFS_CHANGE_INODE, ino))
        mfs_fs_invalq_push_raced(&fs->invalq, MFS_CHANGE_INODE, ino, NULL);
    if (name &&
        mfs_fs_invalq_changed(&fs->invalq, since, MFS_CHANGE_ENTRY, parent))
        mfs_fs_invalq_push_raced(&fs->invalq, MFS_CHANGE_ENTRY, parent, name);
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    wb_wait(req);
    mfs_fs *fs = fs_of(req);
    mfs_attr a;
    int r;
    if (strlen(name) > MFS_NAME_MAX) {
        fuse_reply_err(req, ENAMETOOLONG);
        return;
    }
    uint64_t since = mfs_fs_invalq_seq(&fs->invalq);
    if (strcmp(name, ".") == 0) {
        r = mfs_store_getattr(fs->store, parent, &a);
    } else if (strcmp(name, "..") == 0) {
        uint64_t p;
        r = mfs_store_parent(fs->store, parent, &p);
        if (r == 0)
            r = mfs_store_getattr(fs->store, p, &a);
    } else {
        r = mfs_store_lookup(fs->store, parent, name, &a);
    }
    if (r == -ENOENT) {
        /* negative entry: cached for entry_timeout; remote creates
         * invalidate it through the change callback (noted first: that
         * invalidation may run before the kernel has made the entry) */
        mfs_fs_invalq_negative(&fs->invalq, parent, name);
        struct fuse_entry_param e;
        memset(&e, 0, sizeof e);
        e.entry_timeout = fs->cfg.entry_timeout;
        fuse_reply_entry(req, &e);
        reply_raced(fs, since, 0, parent, name);
        return;
    }
    if (r < 0) {
        fuse_reply_err(req, err_of(r));
        return;
    }
    reply_entry(req, &a);
    reply_raced(fs, since, a.ino, parent, name);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
    wb_wait(req);
    mfs_attr a;
    int r = mfs_store_getattr(fs_of(req)->store, ino, &a);
    if (r < 0)
        fuse_reply_err(req, err_of(r));
    else
        reply_attr(req, &a);
}

#define ACL_ACCESS "system.posix_acl_access"

/* chmod on a file with an extended access ACL: keep the ACL in step. */
static void acl_follow_chmod(mfs_fs *fs, uint64_t ino, uint32_t mode)
{
    uint8_t buf[4 + 8 * 64];
    ssize_t n = mfs_store_getxattr(fs->store, ino, ACL_ACCESS, buf, sizeof buf);
    if (n <= 0 || (size_t)n > sizeof buf)
        return;
    if (mfs_fs_acl_chmod(buf, (size_t)n, mode) == 0) {
        int r =
            mfs_store_setxattr(fs->store, ino, ACL_ACCESS, buf, (size_t)n, 0);
        if (r < 0)
            mfs_log(LOG_WARNING,
                    "fs: inode %lu: cannot update its ACL after "
                    "chmod: %s; the mode changed but the ACL did not "
                    "(chmod it again)",
                    (unsigned long)ino, strerror(-r));
    }
}

/* setxattr of an access ACL: the mode follows it; an ACL that says no more
 * than the mode is not stored (as on a local file system). */
static int acl_set_access(mfs_fs *fs, uint64_t ino, const char *value,
                          size_t size, int flags)
{
    uint32_t perm;
    int equiv;
    mfs_attr a;
    int r = mfs_fs_acl_to_mode(value, size, &perm, &equiv);
    if (r < 0)
        return r;
    r = mfs_store_getattr(fs->store, ino, &a);
    if (r < 0)
        return r;
    if (equiv) {
        ssize_t have = mfs_store_getxattr(fs->store, ino, ACL_ACCESS, NULL, 0);
        if ((flags & MFS_XATTR_REPLACE) && have < 0)
            return -ENODATA;
        if ((flags & MFS_XATTR_CREATE) && have >= 0)
            return -EEXIST;
        if (have >= 0) {
            r = mfs_store_removexattr(fs->store, ino, ACL_ACCESS);
            if (r < 0 && r != -ENODATA)
                return r;
        }
    } else {
        r = mfs_store_setxattr(fs->store, ino, ACL_ACCESS, value, size, flags);
        if (r < 0)
            return r;
    }
    if ((a.mode & 0777) != perm) {
        mfs_setattr sa;
        memset(&sa, 0, sizeof sa);
        sa.mask = MFS_SET_MODE;
        sa.mode = (a.mode & ~0777u) | perm;
        r = mfs_store_setattr(fs->store, ino, &sa, &a);
        /* the kernel does not expect a setxattr to change the mode: drop
         * its cached attributes (offset -1: attributes only, no pages;
         * safe from a handler, it waits for nothing of ours) */
        if (r == 0 && fs->se)
            fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
    }
    return r;
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
                       int to_set, struct fuse_file_info *fi)
{
    wb_wait(req);
    mfs_setattr sa;
    mfs_attr a;
    memset(&sa, 0, sizeof sa);
    if (to_set & FUSE_SET_ATTR_MODE) {
        sa.mask |= MFS_SET_MODE;
        sa.mode = attr->st_mode;
    }
    if (to_set & FUSE_SET_ATTR_UID) {
        sa.mask |= MFS_SET_UID;
        sa.uid = attr->st_uid;
    }
    if (to_set & FUSE_SET_ATTR_GID) {
        sa.mask |= MFS_SET_GID;
        sa.gid = attr->st_gid;
    }
    if (to_set & FUSE_SET_ATTR_SIZE) {
        if (attr->st_size < 0) {
            fuse_reply_err(req, EINVAL);
            return;
        }
        sa.mask |= MFS_SET_SIZE;
        sa.size = (uint64_t)attr->st_size;
    }
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
        sa.mask |= MFS_SET_ATIME_NOW;
    } else if (to_set & FUSE_SET_ATTR_ATIME) {
        sa.mask |= MFS_SET_ATIME;
        sa.atime_ns = ts_to_ns(&attr->st_atim);
    }
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
        sa.mask |= MFS_SET_MTIME_NOW;
    } else if (to_set & FUSE_SET_ATTR_MTIME) {
        sa.mask |= MFS_SET_MTIME;
        sa.mtime_ns = ts_to_ns(&attr->st_mtim);
    }
    if (to_set & FUSE_SET_ATTR_CTIME) {
        sa.mask |= MFS_SET_CTIME;
        sa.ctime_ns = ts_to_ns(&attr->st_ctim);
    }
    int r = mfs_store_setattr(fs_of(req)->store, ino, &sa, &a);
    if (r == 0 && (sa.mask & MFS_SET_MODE))
        acl_follow_chmod(fs_of(req), ino, a.mode);
    /* FATTR_KILL_SUIDGID (FUSE_HANDLE_KILLPRIV_V2): a truncate by a caller
     * without CAP_FSETID, or a chown */
    if (r == 0 &&
        (to_set & (FUSE_SET_ATTR_KILL_SUID | FUSE_SET_ATTR_KILL_SGID)) &&
        !(to_set & FUSE_SET_ATTR_MODE) && S_ISREG(a.mode)) {
        r = kill_suidgid(req, ino);
        if (r > 0)
            r = mfs_store_getattr(fs_of(req)->store, ino, &a);
    }
    if (r < 0)
        fuse_reply_err(req, err_of(r));
    else
        reply_attr(req, &a);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    wb_wait(req);
    char buf[PATH_MAX + 1];
    int r = mfs_store_readlink(fs_of(req)->store, ino, buf, sizeof buf - 1);
    if (r < 0) {
        fuse_reply_err(req, err_of(r));
        return;
    }
    buf[r] = '\0';
    fuse_reply_readlink(req, buf);
}

/* Owner of a new node: the caller, except that in a setgid directory the
 * group is the directory's and new subdirectories stay setgid. */
static int new_owner(fuse_req_t req, uint64_t parent, uint32_t *mode,
                     uint32_t *uid, uint32_t *gid)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    mfs_attr pa;
    int r = mfs_store_getattr(fs_of(req)->store, parent, &pa);
    if (r < 0)
        return r;
    if (!S_ISDIR(pa.mode))
        return -ENOTDIR;
    *uid = ctx->uid;
    *gid = ctx->gid;
    if (pa.mode & S_ISGID) {
        *gid = pa.gid;
        if (S_ISDIR(*mode))
            *mode |= S_ISGID;
    }
    return 0;
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode, dev_t rdev)
{
    wb_wait(req);
    mfs_fs *fs = fs_of(req);
    uint32_t m = mode, uid, gid;
    mfs_attr a;
    int r = new_owner(req, parent, &m, &uid, &gid);
    if (r == 0) {
        mfs_fs_own_names(parent, name, 0, NULL);
        r = mfs_store_mknod(fs->store, parent, name, m, rdev, uid, gid, &a);
        mfs_fs_own_names(0, NULL, 0, NULL);
    }
    if (r < 0)
        fuse_reply_err(req, err_of(r));
    else
        reply_entry(req, &a);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name,
                     mode_t mode)
{
    wb_wait(req);
    mfs_fs *fs = fs_of(req);
    uint32_t m = (mode & 07777) | S_IFDIR, uid, gid;
    mfs_attr a;
    int r = new_owner(req, parent, &m, &uid, &gid);
    if (r == 0) {
        mfs_fs_own_names(parent, name, 0, NULL);
        r = mfs_store_mkdir(fs->store, parent, name, m, uid, gid, &a);
        mfs_fs_own_names(0, NULL, 0, NULL);
    }
    if (r < 0)
        fuse_reply_err(req, err_of(r));
    else
        reply_entry(req, &a);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent,
                       const char *name)
{
    wb_wait(req);
    mfs_fs *fs = fs_of(req);
    uint32_t m = S_IFLNK | 0777, uid, gid;
    mfs_attr a;
    int r = new_owner(req, parent, &m, &uid, &gid);
    if (r == 0) {
        mfs_fs_own_names(parent, name, 0, NULL);
        r = mfs_store_symlink(fs->store, parent, name, link, uid, gid, &a);
        mfs_fs_own_names(0, NULL, 0, NULL);
    }
    if (r < 0)
        fuse_reply_err(req, err_of(r));
    else
        reply_entry(req, &a);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                    const char *newname)
{
    wb_wait(req);
    mfs_attr a;
    mfs_fs_own_names(newparent, newname, 0, NULL);
    int r = mfs_store_link(fs_of(req)->store, ino, newparent, newname, &a);
    mfs_fs_own_names(0, NULL, 0, NULL);
    if (r < 0)
        fuse_reply_err(req, err_of(r));
    else
        reply_entry(req, &a);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    wb_wait(req);
    mfs_fs_own_names(parent, name, 0, NULL);
    int r = mfs_store_unlink(fs_of(req)->store, parent, name);
    mfs_fs_own_names(0, NULL, 0, NULL);
    fuse_reply_err(req, err_of(r));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    wb_wait(req);
    mfs_fs_own_names(parent, name, 0, NULL);
    int r = mfs_store_rmdir(fs_of(req)->store, parent, name);
    mfs_fs_own_names(0, NULL, 0, NULL);
    fuse_reply_err(req, err_of(r));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                      fuse_ino_t newparent, const char *newname,
                      unsigned int flags)
{
    wb_wait(req);
    unsigned f = 0;
    if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE)) {
        fuse_reply_err(req, EINVAL); /* RENAME_WHITEOUT */
        return;
    }
    if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE)) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    if (flags & RENAME_NOREPLACE)
        f |= MFS_RENAME_NOREPLACE;
    if (flags & RENAME_EXCHANGE)
        f |= MFS_RENAME_EXCHANGE;
    mfs_fs_own_names(parent, name, newparent, newname);
    int r = mfs_store_rename(fs_of(req)->store, parent, name, newparent,
                             newname, f);
    mfs_fs_own_names(0, NULL, 0, NULL);
    fuse_reply_err(req, err_of(r));
}

/* ---- files ------------------------------------------------------------ */

/* Makes a handle of ino pinned to the version current now (DESIGN P5) and
 * registers it with fs/files.c, which decides how the kernel may use its
 * page cache (*keep). writer: close publishes; adopted: it stands for an
 * open of a dead daemon (mfs_fs_fh). Returns 0 or -errno. */
static int fh_make(mfs_fs *fs, uint64_t ino, int writer, int adopted, int *keep,
                   mfs_fs_fh **out)
{
    mfs_fs_fh *fh = calloc(1, sizeof *fh);
    if (!fh)
        return -ENOMEM;
    fh->ino = ino;
    fh->writer = writer;
    fh->adopted = adopted;
    int r = mfs_store_version_current(fs->store, ino, &fh->pin);
    /* the collector keeps what an open file pins; a version superseded
     * between the two calls is seen by the second and pinned instead */
    for (int i = 0; r == 0 && i < 4; i++) {
        mfs_stamp now;
        r = mfs_store_pin_set(fs->store, fh, ino, fh->pin);
        if (r == 0)
            r = mfs_store_version_current(fs->store, ino, &now);
        if (r || (now.hlc == fh->pin.hlc && now.node == fh->pin.node))
            break;
        fh->pin = now;
    }
    if (r == -EINVAL)
        r = 0; /* not a regular file: reads fail as mfs_store_read's do */
    *keep = 0;
    if (r == 0)
        r = mfs_fs_files_open(&fs->files, fh, mfs_store_node_id(fs->store),
                              keep);
    if (r < 0) {
        mfs_store_pin_drop(fs->store, fh);
        free(fh);
        return r;
    }
    *out = fh;
    return 0;
}

/* Unregisters and frees a handle fh_make made; when it was the last open
 * still reading an older version, the inode's page cache (which its reads
 * may have refilled) is dropped by the invalidation thread. */
static void fh_free(mfs_fs *fs, uint64_t ino, mfs_fs_fh *fh)
{
    mfs_stamp cur = {0, 0};
    if (mfs_store_version_current(fs->store, ino, &cur) < 0)
        cur = (mfs_stamp){UINT64_MAX, 0}; /* gone: any pin is old */
    if (mfs_fs_files_release(&fs->files, fh, cur, mfs_store_node_id(fs->store)))
        mfs_fs_change_cb(fs, MFS_CHANGE_INODE, ino, NULL);
    mfs_store_pin_drop(fs->store, fh);
    free(fh);
}

/* The first adoption of this daemon is logged; the rest are counted
 * (mfs_fs_handles_adopted). */
static void note_adopted(const char *what, uint64_t ino)
{
    mfs_log(LOG_NOTICE,
            "fs: adopted open files of a previous daemon (first: %s inode "
            "%lu): each goes on with a new handle until the kernel releases "
            "it; later adoptions are counted, not logged",
            what, (unsigned long)ino);
}

/* The open file's handle. A value this daemon did not hand out comes from
 * a daemon that died while the kernel kept the connection: a handle is
 * made for it as a fresh open would make it (pinned to the version
 * current now; writer, as the open flags are unknown and the kernel
 * checked them at the real open) and stands for that value until its
 * RELEASE. When the request adopting it writes (writing: a WRITE, FLUSH
 * or FSYNC), the dead daemon may have answered writes through it that
 * it had not committed (a kill -9 loses them): the file's next write,
 * close or fsync fails with EIO, once, as after a write that failed once
 * answered (fs/wb.c), rather than succeed over a loss. NULL when fi
 * carries no handle or none could be made: the request then goes on as
 * one without a handle. */
static mfs_fs_fh *fh_of(mfs_fs *fs, uint64_t ino,
                        const struct fuse_file_info *fi, int writing)
{
    if (!fi || !fi->fh)
        return NULL;
    mfs_fs_fh *fh = mfs_fs_handles_get(&fs->files, fi->fh, MFS_FS_H_FILE, ino);
    if (fh)
        return fh;
    int keep, first;
    int r = fh_make(fs, ino, 1, 1, &keep, &fh);
    if (r < 0 && writing) /* (gone: its creation was lost in the crash) */
        mfs_fs_wb_fail(&fs->wb, ino, EIO);
    if (r < 0) {
        /* (an inode that is gone fails the request itself: not logged
         * once per request) */
        if (r != -ENOENT)
            mfs_log(LOG_WARNING,
                    "fs: open file of a previous daemon on inode %lu: "
                    "cannot make a handle: %s; the request goes on without "
                    "one",
                    (unsigned long)ino, strerror(-r));
        return NULL;
    }
    mfs_fs_fh *have = mfs_fs_handles_adopt(&fs->files, fi->fh, MFS_FS_H_FILE,
                                           ino, fh, &first);
    if (have != fh)
        fh_free(fs, ino, fh); /* lost the race, or out of memory */
    else if (writing)
        mfs_fs_wb_fail(&fs->wb, ino, EIO);
    if (first)
        note_adopted("file", ino);
    return have;
}

/* Makes the handle of a new open of ino (fh_make).
 * trunc: the open truncated the file (the kernel drops its pages itself).
 * Returns 0 or -errno; on success fi->fh names the handle. */
static int fh_open(mfs_fs *fs, uint64_t ino, struct fuse_file_info *fi,
                   int trunc)
{
    /* writer: close publishes (a read-only open has nothing to publish;
     * FLUSH carries no open flags) */
    int writer = (fi->flags & O_ACCMODE) != O_RDONLY, keep;
    mfs_fs_fh *fh;
    int r = fh_make(fs, ino, writer, 0, &keep, &fh);
    if (r < 0)
        return r;
    uint64_t v;
    r = mfs_fs_handles_add(&fs->files, MFS_FS_H_FILE, ino, fh, &v);
    if (r < 0) {
        fh_free(fs, ino, fh);
        return r;
    }
    fi->keep_cache = keep && !trunc;
    fi->direct_io = fh->direct;
    /* a read-only close has nothing to publish (op_flush): FOPEN_NOFLUSH
     * spares its FLUSH round trip (the kernel keeps fcntl locks itself,
     * and ignores the flag with the writeback cache) */
    fi->noflush = !fh->writer && !fs->cfg.writeback_cache;
    fi->fh = v;
    return 0;
}

/* Frees the handle fi->fh names (a stale value never adopted names
 * none). */
static void fh_close(mfs_fs *fs, uint64_t ino, struct fuse_file_info *fi)
{
    mfs_fs_fh *fh =
        mfs_fs_handles_remove(&fs->files, fi->fh, MFS_FS_H_FILE, ino);
    if (fh)
        fh_free(fs, ino, fh);
    fi->fh = 0;
}

static int open_trunc(mfs_fs *fs, uint64_t ino, mfs_attr *a)
{
    mfs_setattr sa;
    memset(&sa, 0, sizeof sa);
    sa.mask = MFS_SET_SIZE;
    sa.size = 0;
    return mfs_store_setattr(fs->store, ino, &sa, a);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    wb_wait(req);
    mfs_fs *fs = fs_of(req);
    mfs_attr a;
    int r;
    if (fi->flags & O_TRUNC) /* FUSE_CAP_ATOMIC_O_TRUNC */
        r = open_trunc(fs, ino, &a);
    else
        r = mfs_store_getattr(fs->store, ino, &a);
    if (r == 0 && S_ISDIR(a.mode))
        r = -EISDIR;
    int killed = 0;
    if (r == 0 && (fi->flags & O_TRUNC) && (fi->flags & MFS_FS_KILL_SUIDGID)) {
        killed = kill_suidgid(req, ino); /* FUSE_OPEN_KILL_SUIDGID */
        r = killed < 0 ? killed : 0;
    }
    if (r == 0)
        r = fh_open(fs, ino, fi, !!(fi->flags & O_TRUNC));
    if (r < 0) {
        fuse_reply_err(req, err_of(r));
        return;
    }
    if (fuse_reply_open(req, fi) != 0)
        fh_close(fs, ino, fi); /* interrupted: no RELEASE will come */
    /* the kernel does not expect an OPEN to change the mode */
    if (killed > 0 && fs->se)
        fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name,
                      mode_t mode, struct fuse_file_info *fi)
{
    wb_wait(req);
    mfs_fs *fs = fs_of(req);
    uint32_t m = (mode & 07777) | S_IFREG, uid, gid;
    mfs_attr a;
    int r = new_owner(req, parent, &m, &uid, &gid);
    if (r == 0) {
        mfs_fs_own_names(parent, name, 0, NULL);
        r = mfs_store_mknod(fs->store, parent, name, m, 0, uid, gid, &a);
        mfs_fs_own_names(0, NULL, 0, NULL);
    }
    if (r == -EEXIST && !(fi->flags & O_EXCL)) {
        /* lost a race with another creator: open the existing file */
        r = mfs_store_lookup(fs->store, parent, name, &a);
        if (r == 0 && S_ISDIR(a.mode))
            r = -EISDIR;
        if (r == 0 && (fi->flags & O_TRUNC))
            r = open_trunc(fs, a.ino, &a);
        if (r == 0 && (fi->flags & O_TRUNC) &&
            (fi->flags & MFS_FS_KILL_SUIDGID) && kill_suidgid(req, a.ino) > 0)
            r = mfs_store_getattr(fs->store, a.ino, &a);
    }
    if (r < 0) {
        fuse_reply_err(req, err_of(r));
        return;
    }
    struct fuse_entry_param e;
    fill_entry(fs, &a, &e);
    r = fh_open(fs, a.ino, fi, !!(fi->flags & O_TRUNC));
    if (r < 0) {
        fuse_reply_err(req, err_of(r));
        return;
    }
    if (mfs_fs_inodes_ref(&fs->inodes, a.ino, 1) < 0) {
        fh_close(fs, a.ino, fi);
        fuse_reply_err(req, ENOMEM);
        return;
    }
    if (fuse_reply_create(req, &e, fi) != 0) {
        fh_close(fs, a.ino, fi);
        if (mfs_fs_inodes_unref(&fs->inodes, a.ino, 1))
            mfs_store_forget(fs->store, a.ino);
    }
}

/* relatime, as Linux does for local file systems: a read sets atime when
 * it is not newer than mtime or ctime, or is a day old. The kernel never
 * updates atime of a FUSE inode itself. ctime is passed unchanged (an
 * atime update is not a status change). Called after the reply, so the
 * reader does not wait for it. */
static void relatime_touch(mfs_fs *fs, uint64_t ino)
{
    mfs_attr a;
    if (mfs_store_getattr(fs->store, ino, &a) < 0)
        return;
    int64_t now_ns = mfs_store_now_ns(fs->store);
    if (a.atime_ns > a.mtime_ns && a.atime_ns > a.ctime_ns &&
        now_ns - a.atime_ns < (int64_t)24 * 3600 * 1000000000)
        return;
    mfs_setattr sa;
    memset(&sa, 0, sizeof sa);
    sa.mask = MFS_SET_ATIME_NOW | MFS_SET_CTIME;
    sa.ctime_ns = a.ctime_ns;
    if (mfs_store_setattr(fs->store, ino, &sa, &a) == 0 && fs->se)
        fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    wb_wait(req);
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    char *buf = malloc(size ? size : 1);
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    mfs_fs *fs = fs_of(req); /* req is gone once replied */
    mfs_fs_fh *fh = fh_of(fs, ino, fi, 0);
    ssize_t n;
    if (fh) {
        /* one whole version per open (DESIGN P5) */
        mfs_stamp pin = mfs_fs_files_pin_get(&fs->files, fh);
        mfs_stamp was = pin;
        n = mfs_store_read_pinned(fs->store, ino, &pin, (uint64_t)off, buf,
                                  size);
        if (n >= 0 && (pin.hlc != was.hlc || pin.node != was.node)) {
            mfs_fs_files_pin_set(&fs->files, fh, pin);
            mfs_store_pin_set(fs->store, fh, ino, pin);
        }
    } else {
        n = mfs_store_read(fs->store, ino, (uint64_t)off, buf, size);
    }
    if (n < 0)
        fuse_reply_err(req, err_of(n));
    else
        fuse_reply_buf(req, buf, (size_t)n);
    free(buf);
    if (n >= 0 && fs->cfg.relatime)
        relatime_touch(fs, ino);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf,
                     size_t size, off_t off, struct fuse_file_info *fi)
{
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    /* with the writeback cache the kernel owns mtime/ctime and reports
     * them with SETATTR; a WRITE arrives later than write(2) did */
    mfs_fs *fs = fs_of(req);
    int killed = 0;
    if (fi->flags & MFS_FS_KILL_SUIDGID) { /* FUSE_WRITE_KILL_SUIDGID */
        wb_wait(req);
        killed = kill_suidgid(req, ino);
        if (killed < 0) {
            fuse_reply_err(req, err_of(killed));
            return;
        }
    }
    unsigned flags = fs->cfg.writeback_cache ? MFS_WRITE_KEEP_TIMES : 0;
    if (fs->adopted) /* a handle of the dead daemon's? (fh_of) */
        fh_of(fs, ino, fi, 1);
    ssize_t n = mfs_fs_wb_error(&fs->wb, ino, 0); /* (an earlier one failed) */
    if (n == 0 && (killed || mfs_fs_wb_write(&fs->wb, ino, (uint64_t)off, buf,
                                             size, flags))) {
        mfs_fs_wb_wait(&fs->wb); /* (direct: after what is queued) */
        n = mfs_store_write_flags(fs->store, ino, (uint64_t)off, buf, size,
                                  flags);
    } else if (n == 0) {
        n = (ssize_t)size; /* queued */
    }
    if (n < 0)
        fuse_reply_err(req, err_of(n));
    else
        fuse_reply_write(req, (size_t)n);
    /* the kernel does not expect a WRITE to change the mode: drop its
     * cached attributes (offset -1: no pages; waits for nothing of ours) */
    if (killed > 0 && fs->se)
        fuse_lowlevel_notify_inval_inode(fs->se, ino, -1, 0);
}

void mfs_fs_acked(mfs_fs_ackwait *w, int err)
{
    fuse_reply_err((fuse_req_t)w, err ? EIO : 0);
}

void mfs_fs_set_acks(mfs_fs *fs, mfs_fs_acks_fn fn, void *arg, int on_close)
{
    fs->acks_fn = fn;
    fs->acks_arg = arg;
    fs->acks_on_close = on_close;
}

/* Answers a request that made a change durable (or committed) here: err,
 * or once the write concern is met when there is one (when on close). */
static void reply_acked(fuse_req_t req, int err, int on_close)
{
    mfs_fs *fs = fs_of(req);
    if (err || !fs->acks_fn || (on_close && !fs->acks_on_close)) {
        fuse_reply_err(req, err);
        return;
    }
    fs->acks_fn(fs->acks_arg, (mfs_fs_ackwait *)req);
}

/* close(): the kernel has written back the dirty pages; publish the file
 * as a new version (close-to-open, DESIGN P5). */
static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    wb_wait(req);
    mfs_fs_fh *fh = fh_of(fs_of(req), ino, fi, 1);
    if (!(fh && fh->writer) && !fs_of(req)->cfg.writeback_cache) {
        fuse_reply_err(req, 0);
        return;
    }
    int lost = mfs_fs_wb_error(&fs_of(req)->wb, ino, 1);
    int r = mfs_store_publish(fs_of(req)->store, ino);
    if (r < 0)
        mfs_log(LOG_WARNING,
                "fs: publish of inode %lu on close failed: %s; "
                "the timer retries",
                (unsigned long)ino, strerror(-r));
    reply_acked(req, err_of(lost ? lost : r), 1);
}

static void op_release(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
    wb_wait(req);
    mfs_fs *fs = fs_of(req);
    /* no lookup that adopts: a value of a dead daemon that no request
     * adopted needs no handle to be closed, but may have written through
     * it (its open flags are unknown) */
    mfs_fs_fh *fh = mfs_fs_handles_get(&fs->files, fi->fh, MFS_FS_H_FILE, ino);
    int writer = fh ? fh->writer : fi->fh != 0;
    if (writer || fs->cfg.writeback_cache) {
        int r = mfs_store_publish(fs->store, ino);
        if (r < 0)
            mfs_log(LOG_WARNING,
                    "fs: publish of inode %lu on release failed: "
                    "%s; the timer retries",
                    (unsigned long)ino, strerror(-r));
    }
    fh_close(fs, ino, fi);
    fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
                     struct fuse_file_info *fi)
{
    wb_wait(req);
    if (fs_of(req)->adopted) /* a handle of the dead daemon's? (fh_of) */
        fh_of(fs_of(req), ino, fi, 1);
    int lost = mfs_fs_wb_error(&fs_of(req)->wb, ino, 1);
    int r = mfs_store_fsync(fs_of(req)->store, ino);
    reply_acked(req, err_of(lost ? lost : r), 0);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync,
                        struct fuse_file_info *fi)
{
    wb_wait(req);
    reply_acked(req, err_of(mfs_store_fsync(fs_of(req)->store, 0)), 0);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset,
                         off_t length, struct fuse_file_info *fi)
{
    wb_wait(req);
    mfs_fs *fs = fs_of(req);
    mfs_attr a;
    int r;
    if (offset < 0 || length <= 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    uint64_t end = (uint64_t)offset + (uint64_t)length;
    r = mfs_store_getattr(fs->store, ino, &a);
    if (r < 0) {
        fuse_reply_err(req, err_of(r));
        return;
    }
    if (mode == 0) {
        /* no reservation: files are sparse; just extend the size */
        if (end > a.size) {
            mfs_setattr sa;
            memset(&sa, 0, sizeof sa);
            sa.mask = MFS_SET_SIZE;
            sa.size = end;
            r = mfs_store_setattr(fs->store, ino, &sa, &a);
        }
    } else if (mode == FALLOC_FL_KEEP_SIZE) {
        r = 0;
    } else if (mode == (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)) {
        static const char zeros[MFS_CHUNK_SIZE];
        if (end > a.size)
            end = a.size;
        for (uint64_t o = (uint64_t)offset; o < end && r == 0;) {
            size_t n =
                end - o < sizeof zeros ? (size_t)(end - o) : sizeof zeros;
            ssize_t w = mfs_store_write_flags(
                fs->store, ino, o, zeros, n,
                fs->cfg.writeback_cache ? MFS_WRITE_KEEP_TIMES : 0);
            if (w < 0)
                r = (int)w;
            o += n;
        }
    } else {
        r = -EOPNOTSUPP;
    }
    fuse_reply_err(req, err_of(r));
}

/* ---- directories ------------------------------------------------------- */

/* One open directory. The kernel serialises readdir on one open file; the
 * lock guards against anything else. Offsets handed to the kernel are
 * ordinals: 1 and 2 for "." and "..", then 3, 4, ... for the entries in
 * name order; the last name returned is the store's cursor. */
#define DIR_RING 512

typedef struct dir_handle {
    pthread_mutex_t lock;
    uint64_t pos; /* offset of the next entry */
    int have_last;
    char last[MFS_NAME_MAX + 1]; /* last entry consumed, when pos > 2 */
    /* the last DIR_RING entries sent, by their "next" offset: the kernel
     * drops the tail of a reply that did not fit the caller's getdents
     * buffer and asks again from an earlier offset; resuming from here
     * avoids walking the directory from the start (quadratic in its size) */
    struct {
        uint64_t next; /* 0 = unused */
        char *name;
    } ring[DIR_RING];
} dir_handle;

static void ring_put(dir_handle *d, uint64_t next, const char *name)
{
    size_t i = next % DIR_RING;
    free(d->ring[i].name);
    d->ring[i].name = strdup(name);
    d->ring[i].next = d->ring[i].name ? next : 0;
}

/* Moves the cursor to offset want if the ring remembers it. */
static int ring_seek(dir_handle *d, uint64_t want)
{
    size_t i = want % DIR_RING;
    if (want < 3 || d->ring[i].next != want)
        return 0;
    snprintf(d->last, sizeof d->last, "%s", d->ring[i].name);
    d->have_last = 1;
    d->pos = want;
    return 1;
}

typedef struct dirent_batch {
    size_t n;
    struct {
        uint64_t ino;
        uint32_t mode;
        char name[MFS_NAME_MAX + 1];
    } e[READDIR_BATCH];
} dirent_batch;

static int batch_add(void *arg, const char *name, uint64_t ino, uint32_t mode)
{
    dirent_batch *b = arg;
    if (b->n >= READDIR_BATCH)
        return 1;
    size_t len = strlen(name);
    if (len > MFS_NAME_MAX)
        len = MFS_NAME_MAX;
    memcpy(b->e[b->n].name, name, len);
    b->e[b->n].name[len] = '\0';
    b->e[b->n].ino = ino;
    b->e[b->n].mode = mode;
    b->n++;
    return 0;
}

static dir_handle *dir_new(void)
{
    dir_handle *d = calloc(1, sizeof *d);
    if (d)
        pthread_mutex_init(&d->lock, NULL);
    return d;
}

static void dir_free(dir_handle *d)
{
    for (size_t i = 0; i < DIR_RING; i++)
        free(d->ring[i].name);
    pthread_mutex_destroy(&d->lock);
    free(d);
}

/* The open directory's handle; for a value of a dead daemon, a fresh one
 * that stands for it until RELEASEDIR (its first READDIR walks to the
 * offset asked, as after seekdir). NULL when fi carries no handle or
 * none could be made. */
static dir_handle *dir_of(mfs_fs *fs, uint64_t ino,
                          const struct fuse_file_info *fi)
{
    if (!fi->fh)
        return NULL;
    dir_handle *d = mfs_fs_handles_get(&fs->files, fi->fh, MFS_FS_H_DIR, ino);
    if (d || !(d = dir_new()))
        return d;
    int first;
    dir_handle *have =
        mfs_fs_handles_adopt(&fs->files, fi->fh, MFS_FS_H_DIR, ino, d, &first);
    if (have != d)
        dir_free(d); /* lost the race, or out of memory */
    if (first)
        note_adopted("directory", ino);
    return have;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino,
                       struct fuse_file_info *fi)
{
    wb_wait(req);
    mfs_attr a;
    int r = mfs_store_getattr(fs_of(req)->store, ino, &a);
    if (r == 0 && !S_ISDIR(a.mode))
        r = -ENOTDIR;
    if (r < 0) {
        fuse_reply_err(req, err_of(r));
        return;
    }
    mfs_fs *fs = fs_of(req);
    dir_handle *d = dir_new();
    uint64_t v = 0;
    r = d ? mfs_fs_handles_add(&fs->files, MFS_FS_H_DIR, ino, d, &v) : -ENOMEM;
    if (r < 0) {
        if (d)
            dir_free(d);
        fuse_reply_err(req, err_of(r));
        return;
    }
    fi->fh = v;
    if (fuse_reply_open(req, fi) != 0) {
        /* interrupted: no RELEASEDIR will come */
        dir_free(mfs_fs_handles_remove(&fs->files, v, MFS_FS_H_DIR, ino));
    }
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino,
                          struct fuse_file_info *fi)
{
    wb_wait(req);
    /* a value of a dead daemon that no READDIR adopted names nothing */
    dir_handle *d =
        mfs_fs_handles_remove(&fs_of(req)->files, fi->fh, MFS_FS_H_DIR, ino);
    if (d)
        dir_free(d);
    fi->fh = 0;
    fuse_reply_err(req, 0);
}

/* Adds one entry to buf; returns 0 if it did not fit. For readdirplus the
 * kernel takes a lookup reference on every entry it receives. */
static size_t add_entry(fuse_req_t req, int plus, char *buf, size_t room,
                        const char *name, const mfs_attr *a, uint32_t mode,
                        uint64_t ino, off_t next)
{
    mfs_fs *fs = fs_of(req);
    if (plus) {
        struct fuse_entry_param e;
        if (a) {
            fill_entry(fs, a, &e);
        } else {
            memset(&e, 0, sizeof e);
            e.attr.st_ino = ino;
            e.attr.st_mode = mode;
        }
        return fuse_add_direntry_plus(req, buf, room, name, &e, next);
    }
    struct stat st;
    memset(&st, 0, sizeof st);
    st.st_ino = ino;
    st.st_mode = mode;
    return fuse_add_direntry(req, buf, room, name, &st, next);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi, int plus)
{
    mfs_fs *fs = fs_of(req);
    dir_handle *d = dir_of(fs, ino, fi);
    dirent_batch *b = NULL;
    char *buf = NULL;
    size_t used = 0;
    int r = 0, full = 0;
    uint64_t want = off < 0 ? 0 : (uint64_t)off;
    uint64_t since = mfs_fs_invalq_seq(&fs->invalq);
    uint64_t *sent = NULL; /* readdirplus: inodes the reply names */
    size_t nsent = 0, capsent = 0;

    if (!d) {
        fuse_reply_err(req, fi->fh ? ENOMEM : EBADF);
        return;
    }
    buf = malloc(size ? size : 1);
    b = malloc(sizeof *b);
    if (!buf || !b) {
        free(buf);
        free(b);
        fuse_reply_err(req, ENOMEM);
        return;
    }
    pthread_mutex_lock(&d->lock);
    if ((want != d->pos || want == 0) && !ring_seek(d, want)) {
        /* rewind or seekdir: walk again from the start */
        d->pos = 0;
        d->have_last = 0;
    }
    if (d->pos == 0) {
        if (want == 0) {
            /* "." and ".." carry no entry for readdirplus (e.ino 0) */
            size_t n = add_entry(req, plus, buf + used, size - used, ".", NULL,
                                 S_IFDIR, ino, 1);
            if (n > size - used) {
                full = 1;
                goto reply;
            }
            used += n;
        }
        d->pos = 1;
    }
    if (d->pos == 1) {
        if (want <= 1) {
            uint64_t p = ino;
            mfs_store_parent(fs->store, ino, &p);
            size_t n = add_entry(req, plus, buf + used, size - used, "..", NULL,
                                 S_IFDIR, p, 2);
            if (n > size - used) {
                full = 1;
                goto reply;
            }
            used += n;
        }
        d->pos = 2;
    }
    while (!full) {
        b->n = 0;
        r = mfs_store_readdir(fs->store, ino, d->have_last ? d->last : NULL,
                              batch_add, b);
        if (r < 0)
            break;
        for (size_t i = 0; i < b->n; i++) {
            int skip = d->pos < want; /* seeking forward */
            mfs_attr a;
            if (!skip && plus &&
                mfs_store_getattr(fs->store, b->e[i].ino, &a) < 0)
                skip = 1; /* vanished since it was listed */
            if (!skip) {
                size_t n =
                    add_entry(req, plus, buf + used, size - used, b->e[i].name,
                              plus ? &a : NULL, b->e[i].mode, b->e[i].ino,
                              (off_t)(d->pos + 1));
                if (n > size - used) {
                    full = 1;
                    break;
                }
                used += n;
                if (plus && mfs_fs_inodes_ref(&fs->inodes, b->e[i].ino, 1) < 0)
                    mfs_log(LOG_ERR,
                            "fs: readdirplus of inode %lu: out of memory "
                            "counting the kernel's reference to inode %lu; "
                            "its count stays one short",
                            (unsigned long)ino, (unsigned long)b->e[i].ino);
                if (plus && nsent == capsent) {
                    size_t cap = capsent ? capsent * 2 : 64;
                    uint64_t *p = realloc(sent, cap * sizeof *p);
                    if (p) {
                        sent = p;
                        capsent = cap;
                    }
                }
                if (plus && nsent < capsent)
                    sent[nsent++] = b->e[i].ino;
            }
            d->pos++;
            d->have_last = 1;
            memcpy(d->last, b->e[i].name, sizeof d->last);
            if (!skip)
                ring_put(d, d->pos, d->last);
        }
        if (b->n < READDIR_BATCH)
            break;
    }
reply:
    pthread_mutex_unlock(&d->lock);
    if (r < 0 && used == 0)
        fuse_reply_err(req, err_of(r));
    else
        fuse_reply_buf(req, buf, used);
    for (size_t i = 0; i < nsent; i++)
        reply_raced(fs, since, sent[i], 0, NULL);
    free(sent);
    free(buf);
    free(b);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    wb_wait(req);
    do_readdir(req, ino, size, off, fi, 0);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
                           off_t off, struct fuse_file_info *fi)
{
    wb_wait(req);
    do_readdir(req, ino, size, off, fi, 1);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct statvfs sv;
    memset(&sv, 0, sizeof sv);
    int r = mfs_store_statfs(fs_of(req)->store, &sv);
    if (r < 0) {
        fuse_reply_err(req, err_of(r));
        return;
    }
    if (!sv.f_namemax)
        sv.f_namemax = MFS_NAME_MAX;
    fuse_reply_statfs(req, &sv);
}

/* ---- xattrs ------------------------------------------------------------ */

static int xattr_name_ok(const char *name)
{
    static const char *const prefixes[] = {"user.", "trusted.", "security.",
                                           "system.posix_acl_access",
                                           "system.posix_acl_default"};
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
        size_t n = strlen(prefixes[i]);
        if (strncmp(name, prefixes[i], n) == 0) {
            if (prefixes[i][n - 1] == '.')
                return name[n] != '\0';
            return name[n] == '\0';
        }
    }
    return 0;
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                        const char *value, size_t size, int flags)
{
    wb_wait(req);
    if (!xattr_name_ok(name)) {
        fuse_reply_err(req, EOPNOTSUPP);
        return;
    }
    if (strlen(name) > XATTR_NAME_MAX) {
        fuse_reply_err(req, ERANGE);
        return;
    }
    int f = 0;
    if (flags & XATTR_CREATE)
        f |= MFS_XATTR_CREATE;
    if (flags & XATTR_REPLACE)
        f |= MFS_XATTR_REPLACE;
    if (strcmp(name, ACL_ACCESS) == 0) {
        fuse_reply_err(req,
                       err_of(acl_set_access(fs_of(req), ino, value, size, f)));
        return;
    }
    fuse_reply_err(req, err_of(mfs_store_setxattr(fs_of(req)->store, ino, name,
                                                  value, size, f)));
}

/* Replies to a getxattr (name) or listxattr (NULL) of at most size bytes
 * with the store's answer; size 0 asks for the length alone. */
static void reply_xattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                        size_t size)
{
    mfs_fs *fs = fs_of(req);
    char *buf = NULL;
    if (size && !(buf = malloc(size))) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    ssize_t n = name ? mfs_store_getxattr(fs->store, ino, name, buf, size)
                     : mfs_store_listxattr(fs->store, ino, buf, size);
    if (n < 0)
        fuse_reply_err(req, err_of(n));
    else if (size == 0)
        fuse_reply_xattr(req, (size_t)n);
    else if ((size_t)n > size)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, buf, (size_t)n);
    free(buf);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name,
                        size_t size)
{
    wb_wait(req);
    if (!xattr_name_ok(name)) {
        fuse_reply_err(req,
                       strncmp(name, "system.", 7) == 0 ? EOPNOTSUPP : ENODATA);
        return;
    }
    reply_xattr(req, ino, name, size);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    wb_wait(req);
    reply_xattr(req, ino, NULL, size);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    wb_wait(req);
    if (!xattr_name_ok(name)) {
        fuse_reply_err(req,
                       strncmp(name, "system.", 7) == 0 ? EOPNOTSUPP : ENODATA);
        return;
    }
    fuse_reply_err(req,
                   err_of(mfs_store_removexattr(fs_of(req)->store, ino, name)));
}

/* ---- access ------------------------------------------------------------ */

static int in_group(fuse_req_t req, gid_t gid)
{
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    gid_t groups[64];
    if (ctx->gid == gid)
        return 1;
    int n = fuse_req_getgroups(req, 64, groups);
    for (int i = 0; i < n && i < 64; i++)
        if (groups[i] == gid)
            return 1;
    return 0;
}

/* With default_permissions the kernel checks access(2) itself and does not
 * send ACCESS; this answers correctly should it ever be called. */
static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
    wb_wait(req);
    const struct fuse_ctx *ctx = fuse_req_ctx(req);
    mfs_attr a;
    int r = mfs_store_getattr(fs_of(req)->store, ino, &a);
    if (r < 0) {
        fuse_reply_err(req, err_of(r));
        return;
    }
    if (mask == F_OK) {
        fuse_reply_err(req, 0);
        return;
    }
    unsigned bits;
    if (ctx->uid == 0) {
        /* root: everything but executing a file with no x bit */
        int ok = !(mask & X_OK) || S_ISDIR(a.mode) || (a.mode & 0111);
        fuse_reply_err(req, ok ? 0 : EACCES);
        return;
    }
    if (ctx->uid == a.uid)
        bits = (a.mode >> 6) & 7;
    else if (in_group(req, a.gid))
        bits = (a.mode >> 3) & 7;
    else
        bits = a.mode & 7;
    fuse_reply_err(req, ((unsigned)mask & ~bits) ? EACCES : 0);
}

/* ---- every request timed (fs/opstats.c; the status page's metrics) ----
 * The time from the request's arrival in its handler to the handler's
 * return: the daemon's own work, replies sent from other threads (an
 * fsync waiting for acks, node/acks.c) end the count early. TIMED(name,
 * KIND, (params), (args)) makes timed_name around op_name. */
#define TIMED(name, kind, params, args)                                        \
    static void timed_##name params                                            \
    {                                                                          \
        mfs_fs_opclock t = mfs_fs_op_begin(req);                               \
        op_##name args;                                                        \
        mfs_fs_op_end(&t, kind);                                               \
    }
TIMED(lookup, MFS_FSOP_LOOKUP,
      (fuse_req_t req, fuse_ino_t parent, const char *name),
      (req, parent, name))
TIMED(forget, MFS_FSOP_FORGET,
      (fuse_req_t req, fuse_ino_t ino, uint64_t nlookup), (req, ino, nlookup))
TIMED(forget_multi, MFS_FSOP_FORGET_MULTI,
      (fuse_req_t req, size_t count, struct fuse_forget_data *forgets),
      (req, count, forgets))
TIMED(getattr, MFS_FSOP_GETATTR,
      (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
      (req, ino, fi))
TIMED(setattr, MFS_FSOP_SETATTR,
      (fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
       struct fuse_file_info *fi),
      (req, ino, attr, to_set, fi))
TIMED(readlink, MFS_FSOP_READLINK, (fuse_req_t req, fuse_ino_t ino), (req, ino))
TIMED(mknod, MFS_FSOP_MKNOD,
      (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
       dev_t rdev),
      (req, parent, name, mode, rdev))
TIMED(mkdir, MFS_FSOP_MKDIR,
      (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode),
      (req, parent, name, mode))
TIMED(unlink, MFS_FSOP_UNLINK,
      (fuse_req_t req, fuse_ino_t parent, const char *name),
      (req, parent, name))
TIMED(rmdir, MFS_FSOP_RMDIR,
      (fuse_req_t req, fuse_ino_t parent, const char *name),
      (req, parent, name))
TIMED(symlink, MFS_FSOP_SYMLINK,
      (fuse_req_t req, const char *link, fuse_ino_t parent, const char *name),
      (req, link, parent, name))
TIMED(rename, MFS_FSOP_RENAME,
      (fuse_req_t req, fuse_ino_t parent, const char *name,
       fuse_ino_t newparent, const char *newname, unsigned int flags),
      (req, parent, name, newparent, newname, flags))
TIMED(link, MFS_FSOP_LINK,
      (fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
       const char *newname),
      (req, ino, newparent, newname))
TIMED(open, MFS_FSOP_OPEN,
      (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
      (req, ino, fi))
TIMED(read, MFS_FSOP_READ,
      (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
       struct fuse_file_info *fi),
      (req, ino, size, off, fi))
TIMED(write, MFS_FSOP_WRITE,
      (fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
       struct fuse_file_info *fi),
      (req, ino, buf, size, off, fi))
TIMED(flush, MFS_FSOP_FLUSH,
      (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
      (req, ino, fi))
TIMED(release, MFS_FSOP_RELEASE,
      (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
      (req, ino, fi))
TIMED(fsync, MFS_FSOP_FSYNC,
      (fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi),
      (req, ino, datasync, fi))
TIMED(opendir, MFS_FSOP_OPENDIR,
      (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
      (req, ino, fi))
TIMED(readdir, MFS_FSOP_READDIR,
      (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
       struct fuse_file_info *fi),
      (req, ino, size, off, fi))
TIMED(readdirplus, MFS_FSOP_READDIRPLUS,
      (fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
       struct fuse_file_info *fi),
      (req, ino, size, off, fi))
TIMED(releasedir, MFS_FSOP_RELEASEDIR,
      (fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi),
      (req, ino, fi))
TIMED(fsyncdir, MFS_FSOP_FSYNCDIR,
      (fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi),
      (req, ino, datasync, fi))
TIMED(statfs, MFS_FSOP_STATFS, (fuse_req_t req, fuse_ino_t ino), (req, ino))
TIMED(setxattr, MFS_FSOP_SETXATTR,
      (fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
       size_t size, int flags),
      (req, ino, name, value, size, flags))
TIMED(getxattr, MFS_FSOP_GETXATTR,
      (fuse_req_t req, fuse_ino_t ino, const char *name, size_t size),
      (req, ino, name, size))
TIMED(listxattr, MFS_FSOP_LISTXATTR,
      (fuse_req_t req, fuse_ino_t ino, size_t size), (req, ino, size))
TIMED(removexattr, MFS_FSOP_REMOVEXATTR,
      (fuse_req_t req, fuse_ino_t ino, const char *name), (req, ino, name))
TIMED(access, MFS_FSOP_ACCESS, (fuse_req_t req, fuse_ino_t ino, int mask),
      (req, ino, mask))
TIMED(create, MFS_FSOP_CREATE,
      (fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
       struct fuse_file_info *fi),
      (req, parent, name, mode, fi))
TIMED(fallocate, MFS_FSOP_FALLOCATE,
      (fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
       struct fuse_file_info *fi),
      (req, ino, mode, offset, length, fi))
#undef TIMED

static const struct fuse_lowlevel_ops ops = {
    .init = op_init,
    .lookup = timed_lookup,
    .forget = timed_forget,
    .forget_multi = timed_forget_multi,
    .getattr = timed_getattr,
    .setattr = timed_setattr,
    .readlink = timed_readlink,
    .mknod = timed_mknod,
    .mkdir = timed_mkdir,
    .unlink = timed_unlink,
    .rmdir = timed_rmdir,
    .symlink = timed_symlink,
    .rename = timed_rename,
    .link = timed_link,
    .open = timed_open,
    .read = timed_read,
    .write = timed_write,
    .flush = timed_flush,
    .release = timed_release,
    .fsync = timed_fsync,
    .opendir = timed_opendir,
    .readdir = timed_readdir,
    .readdirplus = timed_readdirplus,
    .releasedir = timed_releasedir,
    .fsyncdir = timed_fsyncdir,
    .statfs = timed_statfs,
    .setxattr = timed_setxattr,
    .getxattr = timed_getxattr,
    .listxattr = timed_listxattr,
    .removexattr = timed_removexattr,
    .access = timed_access,
    .create = timed_create,
    .fallocate = timed_fallocate,
};

const struct fuse_lowlevel_ops *mfs_fs_ops(void)
{
    return &ops;
}
