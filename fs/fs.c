/*
 * fs.c - one mounted meshfs: the FUSE session, its mount, the publish timer
 * thread and the kernel-cache invalidation thread.
 *
 * The session loop is libfuse's multi-threaded one. The timer publishes
 * files that stayed dirty for a second (DESIGN 3: "published on close,
 * fsync and every ~second while a file stays dirty"). The invalidation
 * thread drains mfs_fs_invalq and calls the fuse_lowlevel_notify_* functions
 * -- never from a request handler. Nothing here parses command lines or
 * talks to the control socket; that is cli/.
 */
#define FUSE_USE_VERSION 312
#include "fs.h"
#include "log.h"

#include <fuse_lowlevel.h>

#include <errno.h>
#include <spawn.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void mfs_fs_config_default(mfs_fs_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    /* long: every change the kernel did not make itself is invalidated
     * (docs/FS.md "Caching"); a minute bounds what a missed one shows */
    cfg->entry_timeout = 60.0;
    cfg->attr_timeout = 60.0;
    cfg->writeback_cache = 0; /* docs/FS.md: mtime honesty */
    cfg->allow_other = 0;
    cfg->max_write = 1u << 20;
    cfg->publish_ms = 1000;
    cfg->relatime = 1;
    cfg->killpriv_v2 = 1;
    cfg->write_behind = 1;
    cfg->hold = 1;
}

/* The names the request on this thread changes itself (mfs_fs_own_names):
 * the kernel updates its own dentries for them. */
static __thread struct {
    int n;
    uint64_t dir[2];
    const char *name[2];
} own;

void mfs_fs_own_names(uint64_t dir, const char *name, uint64_t dir2,
                      const char *name2)
{
    own.n = name2 ? 2 : name ? 1 : 0;
    own.dir[0] = dir;
    own.name[0] = name;
    own.dir[1] = dir2;
    own.name[1] = name2;
}

static bool own_name(uint64_t dir, const char *name)
{
    for (int i = 0; i < own.n; i++)
        if (own.dir[i] == dir && !strcmp(own.name[i], name))
            return true;
    return false;
}

void mfs_fs_change_cb(void *arg, int kind, uint64_t ino, const char *name)
{
    mfs_fs *fs = arg;
    if (kind == MFS_CHANGE_ENTRY && name && own_name(ino, name))
        return; /* the kernel made this change itself */
    if (kind == MFS_CHANGE_INODE)
        mfs_fs_files_remote(&fs->files, ino);
    int r = mfs_fs_invalq_push(&fs->invalq, kind, ino, name);
    if (r < 0 && r != -ENOBUFS)
        mfs_log(LOG_WARNING,
                "fs: cannot queue invalidation of inode %lu: "
                "%s; the kernel cache expires by timeout",
                (unsigned long)ino, strerror(-r));
}

void mfs_fs_signals_block(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

/* How long until the next send of an invalidation that found nothing in
 * the kernel, or 0 to give up. An inode the kernel holds lookup references
 * to (fs/inodes.c) but does not know yet is being instantiated from a
 * reply that may carry attributes read before the change: send again until
 * it is there (or forgotten). A name a handler saw change while it built
 * its reply, or answered "no such name" within the last 50 ms: a few
 * times. Anything else is simply not cached (normal). */
static uint64_t retry_ns(mfs_fs *fs, const mfs_fs_inval_item *it)
{
    static const unsigned max_inode = 16, max_entry = 8;
    uint64_t step = 50000u << (it->tries < 9 ? it->tries : 9); /* 50 us.. */
    if (step > 20000000u)
        step = 20000000u; /* ..20 ms: about 0.2 s in all */
    if (it->kind != MFS_CHANGE_ENTRY && it->tries < max_inode &&
        mfs_fs_inodes_count(&fs->inodes, it->ino) > 0)
        return step;
    if (it->kind == MFS_CHANGE_ENTRY && it->tries < max_entry &&
        (it->raced || mfs_fs_invalq_negative_recent(&fs->invalq, it->ino,
                                                    it->name, 50000000u)))
        return step;
    return 0;
}

static void *inval_main(void *arg)
{
    mfs_fs *fs = arg;
    pthread_setname_np(pthread_self(), "mfs-inval"); /* top, perf */
    mfs_fs_inval_item *it;
    mfs_fs_signals_block();
    while ((it = mfs_fs_invalq_pop(&fs->invalq)) != NULL) {
        int r = 0;
        if (it->kind == MFS_CHANGE_ENTRY && it->name[0])
            r = fuse_lowlevel_notify_inval_entry(fs->se, it->ino, it->name,
                                                 strlen(it->name));
        else /* (attributes only, or those and the pages) */
            r = fuse_lowlevel_notify_inval_inode(
                fs->se, it->ino, it->kind == MFS_CHANGE_ATTR ? -1 : 0, 0);
        if (r == -ENOENT) {
            /* the kernel does not cache it: nothing to drop, unless a
             * reply is instantiating it right now */
            uint64_t wait = retry_ns(fs, it);
            if (wait) {
                struct timespec ts;
                clock_gettime(CLOCK_MONOTONIC, &ts);
                it->tries++;
                it->due_ns = (uint64_t)ts.tv_sec * 1000000000u +
                             (uint64_t)ts.tv_nsec + wait;
                mfs_fs_invalq_requeue(&fs->invalq, it);
                continue;
            }
        } else if (r < 0) {
            mfs_log(LOG_DEBUG, "fs: invalidation of inode %lu failed: %s",
                    (unsigned long)it->ino, strerror(-r));
        }
        if (it->tries)
            mfs_log(LOG_DEBUG,
                    "fs: invalidation of inode %lu sent %u times (%s)",
                    (unsigned long)it->ino, it->tries + 1,
                    r == 0 ? "done" : "gave up");
        free(it);
    }
    return NULL;
}

static void *timer_main(void *arg)
{
    mfs_fs *fs = arg;
    pthread_setname_np(pthread_self(), "mfs-timer"); /* top, perf */
    mfs_fs_signals_block();
    pthread_mutex_lock(&fs->timer_lock);
    while (!fs->timer_stop) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns =
            (uint64_t)ts.tv_nsec + (uint64_t)fs->cfg.publish_ms * 1000000u;
        ts.tv_sec += (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        pthread_cond_timedwait(&fs->timer_cond, &fs->timer_lock, &ts);
        if (fs->timer_stop)
            break;
        pthread_mutex_unlock(&fs->timer_lock);
        int r = mfs_store_publish_all(fs->store, fs->cfg.publish_ms);
        if (r < 0)
            mfs_log(LOG_WARNING,
                    "fs: periodic publish failed: %s; retrying "
                    "in %u ms",
                    strerror(-r), fs->cfg.publish_ms);
        pthread_mutex_lock(&fs->timer_lock);
    }
    pthread_mutex_unlock(&fs->timer_lock);
    return NULL;
}

int mfs_fs_init(mfs_fs *fs, mfs_store *store, const mfs_fs_config *cfg,
                char *err, size_t errcap)
{
    char opts[4096];
    int r;

    memset(fs, 0, sizeof *fs);
    fs->store = store;
    fs->cfg = *cfg;
    fs->hold_sock = -1;
    pthread_mutex_init(&fs->timer_lock, NULL);
    pthread_cond_init(&fs->timer_cond, NULL);
    mfs_fs_invalq_init(&fs->invalq);
    mfs_fs_wb_init(&fs->wb, store);
    if (mfs_fs_inodes_init(&fs->inodes) < 0 ||
        mfs_fs_files_init(&fs->files) < 0) {
        snprintf(err, errcap, "out of memory");
        return -ENOMEM;
    }
    /* the root is referenced by the kernel for the whole mount */
    mfs_fs_inodes_ref(&fs->inodes, FUSE_ROOT_ID, 1);

    struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
    r = fuse_opt_add_arg(&args, "meshfs");
    snprintf(opts, sizeof opts, "default_permissions,subtype=meshfs%s",
             cfg->allow_other ? ",allow_other" : "");
    if (r == 0)
        r = fuse_opt_add_arg(&args, "-o");
    if (r == 0)
        r = fuse_opt_add_arg(&args, opts);
    if (r == 0 && cfg->fsname) {
        /* the store dir, commas and backslashes escaped */
        char *esc = NULL, *o = NULL;
        r = fuse_opt_add_opt_escaped(&esc, cfg->fsname);
        if (r == 0 && asprintf(&o, "fsname=%s", esc) < 0)
            r = -1;
        if (r == 0)
            r = fuse_opt_add_arg(&args, "-o");
        if (r == 0)
            r = fuse_opt_add_arg(&args, o);
        free(esc);
        free(o);
    }
    if (r == 0 && cfg->user_opts && cfg->user_opts[0]) {
        r = fuse_opt_add_arg(&args, "-o");
        if (r == 0)
            r = fuse_opt_add_arg(&args, cfg->user_opts);
    }
    if (r == 0 && cfg->debug)
        r = fuse_opt_add_arg(&args, "-d");
    if (r != 0) {
        fuse_opt_free_args(&args);
        snprintf(err, errcap, "out of memory");
        return -ENOMEM;
    }
    fs->se = fuse_session_new(&args, mfs_fs_ops(),
                              sizeof(struct fuse_lowlevel_ops), fs);
    fuse_opt_free_args(&args);
    if (!fs->se) {
        snprintf(err, errcap, "invalid mount options: %s",
                 cfg->user_opts ? cfg->user_opts : "(none)");
        return -EINVAL;
    }
    return 0;
}

static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
    mfs_fs *fs = userdata;
    return mfs_fs_killpriv_read(&fs->killpriv, fd, buf, len);
}

static ssize_t io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
    mfs_fs *fs = userdata;
    return mfs_fs_killpriv_writev(&fs->killpriv, fd, iov, count);
}

/* The mount's device number ("MAJ:MIN", the name of its bdi) from
 * /proc/self/mountinfo: the mount point itself must not be stat'ed, the
 * session does not answer yet. 0 or -1. */
static int mount_devno(const char *mountpoint, char *out, size_t cap)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f)
        return -1;
    char line[8192], dev[64], mnt[4096];
    int found = -1;
    while (fgets(line, sizeof line, f)) {
        /* ID PARENT MAJ:MIN ROOT MOUNTPOINT ...; the last match wins (a
         * mount stacked on a dead one) */
        if (sscanf(line, "%*s %*s %63s %*s %4095s", dev, mnt) != 2)
            continue;
        char *w = mnt; /* unescape \ooo */
        for (char *r = mnt; *r; r++) {
            if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] &&
                r[3]) {
                *w++ = (char)((r[1] - '0') << 6 | (r[2] - '0') << 3 |
                              (r[3] - '0'));
                r += 3;
            } else {
                *w++ = *r;
            }
        }
        *w = 0;
        if (strcmp(mnt, mountpoint) == 0 &&
            snprintf(out, cap, "%s", dev) < (int)cap)
            found = 0;
    }
    fclose(f);
    return found;
}

/* The kernel caps a FUSE mount's readahead at its bdi's default (128 KiB)
 * whatever INIT asks (max_readahead), so a sequential read costs a READ
 * per 128 KiB. Root may raise it, as for any block device: to
 * max_readahead (1 MiB). A cold 1 GiB read (fsbench seqread, alternating):
 * 1.26 / 1.10 s at 128 KiB, 1.10 / 0.99 s at 1 MiB. */
static void raise_readahead(mfs_fs *fs)
{
    char dev[64], path[128];
    unsigned kb = (fs->cfg.max_write ? fs->cfg.max_write : 1u << 20) / 1024;
    if (mount_devno(fs->mountpoint, dev, sizeof dev) < 0)
        return;
    snprintf(path, sizeof path, "/sys/class/bdi/%s/read_ahead_kb", dev);
    FILE *f = fopen(path, "r+");
    unsigned cur = 0;
    if (!f)
        return; /* (not root: stays at the kernel's default) */
    if (fscanf(f, "%u", &cur) == 1 && cur < kb) {
        rewind(f);
        if (fprintf(f, "%u\n", kb) < 0 || fflush(f) != 0)
            mfs_log(LOG_DEBUG, "fs: cannot raise %s to %u: %s", path, kb,
                    strerror(errno));
    }
    fclose(f);
}

/* The mount a crashed daemon left to its holder (fs/holder.c) becomes
 * ours: the session serves its /dev/fuse descriptor. */
static int adopt(mfs_fs *fs, char *err, size_t errcap)
{
    size_t cap = 65536;
    fs->init = malloc(cap);
    if (!fs->init) {
        snprintf(err, errcap, "out of memory");
        return -ENOMEM;
    }
    int fd = -1;
    fs->initlen = cap;
    int s = mfs_fs_holder_adopt(fs->cfg.store_dir, &fd, fs->init, &fs->initlen);
    if (s < 0) {
        snprintf(err, errcap,
                 s == -EBUSY ? "a daemon took the mount on %s over already"
                             : "cannot take the mount on %s over from its "
                               "holder: %s",
                 fs->mountpoint, strerror(-s));
        return s;
    }
    char dev[32];
    snprintf(dev, sizeof dev, "/dev/fd/%d", fd);
    if (fuse_session_mount(fs->se, dev) != 0) {
        close(fd);
        close(s); /* the holder waits for the next daemon */
        snprintf(err, errcap, "cannot serve the mount on %s", fs->mountpoint);
        return -EIO;
    }
    fs->hold_sock = s;
    fs->adopted = 1;
    fs->own_mount = 1; /* libfuse does not unmount it */
    return 0;
}

/* Linux 6.9's FUSE_NOTIFY_RESEND: requests the kernel sent to a daemon
 * that died unanswered are queued again (after an adoption). */
#define NOTIFY_RESEND 7

/* The session's first request. A new mount's is the kernel's INIT, which
 * is kept for a holder; an adopted one is fed the INIT the holder kept
 * (the kernel negotiated with the dead daemon and ignores our answer,
 * ENOENT, which libfuse does not report), then asks for the dead
 * daemon's requests again. */
static void first_request(mfs_fs *fs)
{
    int fd = fuse_session_fd(fs->se);
    if (fs->adopted) {
        struct fuse_buf b = {.mem = fs->init, .size = fs->initlen};
        mfs_fs_killpriv_init(&fs->killpriv, fs->init, fs->initlen);
        fuse_session_process_buf(fs->se, &b);
        struct {
            uint32_t len;
            int32_t error;
            uint64_t unique;
        } resend = {sizeof resend, NOTIFY_RESEND, 0};
        if (write(fd, &resend, sizeof resend) < 0)
            mfs_log(LOG_WARNING,
                    "fs: this kernel cannot send again the requests the "
                    "crashed daemon of %s was serving (%s; Linux 6.9 can): "
                    "programs waiting on them wait until killed",
                    fs->mountpoint, strerror(errno));
        mfs_log(LOG_NOTICE, "fs: took over the mount on %s from its holder",
                fs->mountpoint);
        return;
    }
    struct fuse_buf b = {0};
    int r = fuse_session_receive_buf(fs->se, &b);
    if (r <= 0)
        return; /* (the loop sees it again) */
    if (fs->cfg.hold && fs->cfg.store_dir && b.size >= 8 &&
        !(b.flags & FUSE_BUF_IS_FD)) {
        fs->init = malloc(b.size);
        if (fs->init) {
            memcpy(fs->init, b.mem, b.size);
            fs->initlen = b.size;
        }
    }
    fuse_session_process_buf(fs->se, &b);
    free(b.mem);
    char dev[64];
    if (fs->init && mount_devno(fs->mountpoint, dev, sizeof dev) == 0) {
        fs->hold_sock = mfs_fs_holder_start(fs->cfg.store_dir, fs->mountpoint,
                                            dev, fd, fs->init, fs->initlen);
        if (fs->hold_sock < 0)
            mfs_log(LOG_WARNING,
                    "fs: cannot start the holder of %s (%s): if the daemon "
                    "crashes, the mount is dead until mounted again",
                    fs->mountpoint, strerror(-fs->hold_sock));
    }
}

int mfs_fs_mount(mfs_fs *fs, const char *mountpoint, char *err, size_t errcap)
{
    fs->mountpoint = strdup(mountpoint);
    if (!fs->mountpoint) {
        snprintf(err, errcap, "out of memory");
        return -ENOMEM;
    }
    if (fs->cfg.adopt) {
        int r = adopt(fs, err, errcap);
        if (r < 0)
            return r;
    } else if (fs->cfg.stack) {
        int fd = mfs_fs_mount_stacked(&fs->cfg, mountpoint, err, errcap);
        if (fd < 0)
            return fd;
        char dev[32];
        snprintf(dev, sizeof dev, "/dev/fd/%d", fd);
        if (fuse_session_mount(fs->se, dev) != 0) {
            umount2(mountpoint, MNT_DETACH);
            close(fd);
            snprintf(err, errcap, "cannot serve the mount on %s", mountpoint);
            return -EIO;
        }
        fs->own_mount = 1; /* libfuse does not unmount it */
    } else if (fuse_session_mount(fs->se, mountpoint) != 0) {
        snprintf(err, errcap, "cannot mount on %s (see the message above)",
                 mountpoint);
        return -EIO;
    }
    fs->mounted = 1;
    raise_readahead(fs);
    /* libfuse 3.14 cannot negotiate FUSE_HANDLE_KILLPRIV_V2 itself:
     * fs/killpriv.c does it in the session's reads and writes */
    fs->killpriv.want = fs->cfg.killpriv_v2;
    const struct fuse_custom_io io = {.writev = io_writev, .read = io_read};
    if (fuse_session_custom_io(fs->se, &io, fuse_session_fd(fs->se)) != 0)
        mfs_log(LOG_WARNING,
                "fs: cannot hook the session's i/o on %s; the kernel checks "
                "file capabilities on every write (a GETXATTR each)",
                mountpoint);
    return 0;
}

/* The kernel may still use ino: it holds a lookup count (an open file
 * holds one too). For the store's collector (mfs_store_set_ino_busy_cb). */
static bool ino_busy(void *arg, uint64_t ino)
{
    mfs_fs *fs = arg;
    return mfs_fs_inodes_count(&fs->inodes, ino) > 0;
}

int mfs_fs_run(mfs_fs *fs)
{
    int r;
    if (fuse_set_signal_handlers(fs->se) != 0)
        return -EIO;
    fs->signals_set = 1;
    mfs_store_set_change_cb(fs->store, mfs_fs_change_cb, fs);
    mfs_store_set_ino_busy_cb(fs->store, ino_busy, fs);
    if (pthread_create(&fs->inval_thread, NULL, inval_main, fs) != 0)
        return -EAGAIN;
    if (pthread_create(&fs->timer_thread, NULL, timer_main, fs) != 0) {
        mfs_fs_invalq_stop(&fs->invalq);
        pthread_join(fs->inval_thread, NULL);
        return -EAGAIN;
    }
    fs->threads_started = 1;
    if (!fs->cfg.writeback_cache && fs->cfg.write_behind &&
        mfs_fs_wb_start(&fs->wb) < 0) /* (the kernel's cache is ours then) */
        mfs_log(LOG_WARNING,
                "fs: cannot start the write-behind thread for %s; every "
                "write waits for the store instead",
                fs->mountpoint);

    struct fuse_loop_config *lc = fuse_loop_cfg_create();
    if (!lc)
        return -ENOMEM;
    fuse_loop_cfg_set_clone_fd(lc, 0);
    fuse_loop_cfg_set_idle_threads(lc, 10);
    fuse_loop_cfg_set_max_threads(lc, 64);
    first_request(fs);
    r = fuse_session_loop_mt(fs->se, lc);
    fuse_loop_cfg_destroy(lc);
    /* r > 0: stopped by that signal; < 0: error */
    if (r < 0) {
        mfs_log(LOG_ERR,
                "fs: session loop of %s failed: %s; the daemon shuts down "
                "(mount it again)",
                fs->mountpoint, strerror(-r));
        return r;
    }
    return 0;
}

int mfs_fs_flush_all(mfs_fs *fs)
{
    mfs_fs_wb_wait(&fs->wb);
    int r = mfs_store_publish_all(fs->store, 0);
    int f = mfs_store_fsync(fs->store, 0);
    return r < 0 ? r : f;
}

void mfs_fs_forget_mount(mfs_fs *fs)
{
    __atomic_store_n(&fs->mounted, 0, __ATOMIC_RELEASE);
}

/* An adopted mount without root: fusermount3 unmounts it (lazily, as
 * libfuse does), since libfuse knows it only as /dev/fd/N. */
static void fusermount_unmount(const char *mnt)
{
    char *argv[] = {"fusermount3", "-u", "-q", "-z", "--", (char *)mnt, NULL};
    pid_t pid;
    extern char **environ;
    if (posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ) != 0)
        return;
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
}

void mfs_fs_close(mfs_fs *fs)
{
    mfs_fs_wb_stop(&fs->wb); /* (applies what is queued) */
    if (fs->threads_started) {
        pthread_mutex_lock(&fs->timer_lock);
        fs->timer_stop = 1;
        pthread_cond_broadcast(&fs->timer_cond);
        pthread_mutex_unlock(&fs->timer_lock);
        pthread_join(fs->timer_thread, NULL);
        mfs_fs_invalq_stop(&fs->invalq);
        pthread_join(fs->inval_thread, NULL);
        fs->threads_started = 0;
    }
    if (fs->store) {
        mfs_store_set_change_cb(fs->store, NULL, NULL);
        /* (the kernel holds nothing once unmounted: not busy; the store
         * outlives fs's inode table) */
        mfs_store_set_ino_busy_cb(fs->store, NULL, NULL);
        int r = mfs_fs_flush_all(fs);
        if (r < 0)
            mfs_log(LOG_ERR,
                    "fs: final publish/fsync of %s failed: %s; writes not "
                    "yet on disk may be lost",
                    fs->mountpoint ? fs->mountpoint : "(unmounted)",
                    strerror(-r));
    }
    if (fs->se) {
        if (fs->signals_set)
            fuse_remove_signal_handlers(fs->se);
        mfs_fs_holder_bye(fs->hold_sock); /* not a crash: it may go */
        fs->hold_sock = -1;
        if (__atomic_load_n(&fs->mounted, __ATOMIC_ACQUIRE)) {
            if (fs->own_mount && geteuid() != 0)
                fusermount_unmount(fs->mountpoint);
            else if (fs->own_mount)
                umount2(fs->mountpoint, MNT_DETACH); /* as libfuse does */
            else
                fuse_session_unmount(fs->se);
            if (fs->own_mount && geteuid() == 0)
                mfs_fs_detach_dead(fs->mountpoint);
        }
        fuse_session_destroy(fs->se);
        fs->se = NULL;
    }
    fs->mounted = 0;
    mfs_fs_inodes_close(&fs->inodes);
    mfs_fs_files_close(&fs->files);
    mfs_fs_invalq_close(&fs->invalq);
    mfs_fs_wb_close(&fs->wb);
    pthread_mutex_destroy(&fs->timer_lock);
    pthread_cond_destroy(&fs->timer_cond);
    free(fs->mountpoint);
    fs->mountpoint = NULL;
    free(fs->init);
    fs->init = NULL;
    fs->store = NULL;
}
