/*
 * stack.c - mounting over the dead mount a killed daemon left behind.
 *
 * A killed daemon leaves its mount in place, answering ENOTCONN. Detaching
 * it first (umount -l) and mounting afresh opens a gap in which programs
 * that work by path write into the bare directory underneath, and from then
 * on the mount point is not empty. So a restart mounts on top of the dead
 * mount instead: the path leads to the new mount the moment it exists, and
 * to the dead one (ENOTCONN, nothing written) until then. libfuse cannot
 * do that (it stat()s the mount point first: ENOTCONN), so root does the
 * mount(2) itself, as libfuse would with the same options, and hands the
 * /dev/fuse descriptor to the session as "/dev/fd/N". The dead mounts stay
 * under the live one until it is unmounted (mfs_fs_detach_dead).
 */
#include "fs.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <unistd.h>

#define FUSE_SUPER_MAGIC 0x65735546

static const struct {
    const char *name;
    unsigned long set, clear;
} mount_flags[] = {
    {"ro", MS_RDONLY, 0},         {"rw", 0, MS_RDONLY},
    {"nosuid", MS_NOSUID, 0},     {"suid", 0, MS_NOSUID},
    {"nodev", MS_NODEV, 0},       {"dev", 0, MS_NODEV},
    {"noexec", MS_NOEXEC, 0},     {"exec", 0, MS_NOEXEC},
    {"sync", MS_SYNCHRONOUS, 0},  {"async", 0, MS_SYNCHRONOUS},
    {"dirsync", MS_DIRSYNC, 0},   {"noatime", MS_NOATIME, 0},
    {"atime", 0, MS_NOATIME},     {"nodiratime", MS_NODIRATIME, 0},
    {"relatime", MS_RELATIME, 0}, {"strictatime", MS_STRICTATIME, 0},
};

/* The options the kernel's fuse takes in the mount data. */
static int kernel_opt(const char *t)
{
    return !strcmp(t, "allow_other") || !strcmp(t, "default_permissions") ||
           !strncmp(t, "max_read=", 9) || !strncmp(t, "blksize=", 8);
}

static int add(char *buf, size_t cap, const char *t)
{
    size_t len = strlen(buf);
    int n = snprintf(buf + len, cap - len, "%s%s", len ? "," : "", t);
    return n < 0 || (size_t)n >= cap - len ? -E2BIG : 0;
}

int mfs_fs_mount_stacked(const mfs_fs_config *cfg, const char *mountpoint,
                         char *err, size_t errcap)
{
    unsigned long flags = MS_NOSUID | MS_NODEV; /* libfuse's defaults */
    char data[4096], opts[4096], tok[4096];
    snprintf(opts, sizeof opts, "default_permissions%s%s%s",
             cfg->allow_other ? ",allow_other" : "",
             cfg->user_opts && cfg->user_opts[0] ? "," : "",
             cfg->user_opts ? cfg->user_opts : "");
    data[0] = '\0';
    int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        snprintf(err, errcap, "cannot open /dev/fuse: %s", strerror(e));
        return -e;
    }
    snprintf(tok, sizeof tok, "fd=%d,rootmode=40000,user_id=%u,group_id=%u", fd,
             (unsigned)getuid(), (unsigned)getgid());
    int r = add(data, sizeof data, tok);
    char *save = NULL;
    for (char *t = strtok_r(opts, ",", &save); t && !r;
         t = strtok_r(NULL, ",", &save)) {
        size_t i = 0, n = sizeof mount_flags / sizeof mount_flags[0];
        while (i < n && strcmp(t, mount_flags[i].name))
            i++;
        if (i < n) {
            flags = (flags & ~mount_flags[i].clear) | mount_flags[i].set;
            continue;
        }
        if (kernel_opt(t)) {
            r = add(data, sizeof data, t);
            continue;
        }
        snprintf(err, errcap,
                 "cannot mount over the dead mount on %s with -o %s (only "
                 "mount flags and allow_other, default_permissions, "
                 "max_read, blksize): unmount it first (meshfs umount %s)",
                 mountpoint, t, mountpoint);
        close(fd);
        return -EINVAL;
    }
    if (r) {
        snprintf(err, errcap, "mount options too long");
        close(fd);
        return r;
    }
    const char *source = cfg->fsname ? cfg->fsname : "meshfs";
    if (mount(source, mountpoint, "fuse.meshfs", flags, data) != 0) {
        int e = errno;
        snprintf(err, errcap, "cannot mount over the dead mount on %s: %s",
                 mountpoint, strerror(e));
        close(fd);
        return -e;
    }
    mfs_log(LOG_NOTICE,
            "fs: mounted over the dead mount a killed daemon left on %s "
            "(programs using it by path see this mount from now on; it is "
            "detached when this one is unmounted)",
            mountpoint);
    return fd;
}

int mfs_fs_detach_dead(const char *mountpoint)
{
    int n = 0;
    struct statfs sf;
    /* statfs asks the daemon: ENOTCONN is a dead FUSE mount (and
     * ECONNABORTED one whose daemon's last threads were exiting) */
    while (n < 4096 && statfs(mountpoint, &sf) != 0 &&
           (errno == ENOTCONN || errno == ECONNABORTED)) {
        if (umount2(mountpoint, MNT_DETACH) != 0)
            break;
        n++;
    }
    if (n)
        mfs_log(LOG_NOTICE,
                "fs: detached %d dead mount(s) that killed daemons had left "
                "under this one on %s",
                n, mountpoint);
    return n;
}
