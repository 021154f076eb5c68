/*
 * daemon.c - one whole running node (daemon.h): the store, the file
 * system, the mesh side, the control socket and the rejoin thread, opened
 * in that order and closed in the reverse one. What a user sees of it
 * (the messages in err, the log lines) is decided here, once, for every
 * way of running a node; cli/mount.c only chooses between the foreground
 * and a forked daemon and prints.
 *
 * It must never print to stdout or stderr itself (the caller may have
 * detached from the terminal) and never call into cli/.
 */
#include "daemon.h"

#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *store_open_msg(int r)
{
    switch (r) {
    case -EBUSY:
        return "the store is already in use (mounted by another meshfs "
               "daemon)";
    case -EPROTONOSUPPORT:
        return "the store has a format this meshfs version does not know";
    case -ENOENT:
    case -EBADF:
        return "the directory holds something that is not a meshfs store";
    case -EACCES:
    case -EPERM:
        return "no permission to open the store";
    default:
        return NULL;
    }
}

/* The store as the daemon runs it: group commit always on. */
static int store_open(mfs_daemon *d, const mfs_daemon_config *cfg)
{
    int r = 0;
    if (cfg->create) {
        r = mfs_node_store_create(d->store_dir, 1, &d->store);
        if (r == 0)
            mfs_log(LOG_NOTICE,
                    "mount: created a new store in %s (node "
                    "%016" PRIx64 ")",
                    d->store_dir, mfs_store_node_id(d->store));
        mfs_store_close(d->store); /* reopened below as the daemon runs it */
        d->store = NULL;
    }
    if (r == 0) {
        mfs_store_config sc;
        mfs_store_config_default(&sc);
        if (!getenv("MESHFS_COMMIT_WINDOW_US")) /* (read by the default) */
            sc.commit_window_us = MFS_DAEMON_COMMIT_WINDOW_US;
        /* without group commit the store is not safe against a power cut
         * (docs/ARCHITECTURE.md): a daemon always has it, 0 or not */
        if (!sc.commit_window_us)
            sc.commit_window_us = 1;
        r = mfs_store_open(&d->store, d->store_dir, &sc, 0);
    }
    return r;
}

/* Large buffers (a big file's chunk list, op and version record, built
 * at every publish and fsync; a stream's write) come from the heap and go
 * back to it, not to and from the kernel: glibc maps each one of 128 KiB
 * or more anew, and its first touch of every page is a fault and a
 * zeroed page (perf, fsync of a 4 KiB write in a 1 GiB file). */
static void keep_large_buffers(void)
{
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20); /* (what the heap may keep) */
}

/* The write concern this mount runs with (daemon.h, mfs_daemon_config):
 * a given n starts afresh, else STORE/acks; then the other settings given.
 * A malformed STORE/acks is reported and replaced by the defaults. */
static void acks_resolve(mfs_daemon *d, const mfs_daemon_config *cfg)
{
    const mfs_acks_config *g = &cfg->acks;
    unsigned given = cfg->acks_given;
    mfs_acks_config *a = &d->acks;
    if (given & MFS_DAEMON_ACKS_N) {
        mfs_daemon_acks_default(a);
        a->n = g->n;
    } else {
        int r = mfs_daemon_acks_read(d->store_dir, a);
        if (r < 0 && r != -ENOENT)
            mfs_log(LOG_WARNING,
                    "mount: %s/%s is %s; ignored: the write concern is "
                    "off unless --acks is given",
                    d->store_dir, MFS_ACKS_FILE,
                    r == -EINVAL ? "malformed (want one line \"acks N "
                                   "timeout_ms MS wait 0|1 on_close 0|1\")"
                                 : strerror(-r));
    }
    if (given & MFS_DAEMON_ACKS_TIMEOUT)
        a->timeout_ms = g->timeout_ms;
    if (given & MFS_DAEMON_ACKS_WAIT)
        a->wait = g->wait;
    if (given & MFS_DAEMON_ACKS_ON_CLOSE)
        a->on_close = g->on_close;
}

/* Remembers what was given, once the mount is up: a mount that failed
 * changes nothing in the store directory. */
static void acks_remember(mfs_daemon *d, const mfs_daemon_config *cfg)
{
    if (!cfg->acks_given)
        return;
    int r = mfs_daemon_acks_write(d->store_dir, &d->acks);
    if (r < 0)
        mfs_log(LOG_WARNING,
                "mount: cannot write %s/%s: %s; the write concern holds for "
                "this mount only",
                d->store_dir, MFS_ACKS_FILE, strerror(-r));
}

int mfs_daemon_open(mfs_daemon *d, const mfs_daemon_config *cfg, char *err,
                    size_t errcap)
{
    int r;
    memset(d, 0, sizeof *d);
    keep_large_buffers();
    snprintf(d->store_dir, sizeof d->store_dir, "%s", cfg->store_dir);
    snprintf(d->mountpoint, sizeof d->mountpoint, "%s", cfg->mountpoint);

    r = store_open(d, cfg);
    if (r < 0) {
        const char *m = store_open_msg(r);
        snprintf(err, errcap, "cannot open store %s: %s", d->store_dir,
                 m ? m : mfs_store_strerror(r));
        return r;
    }

    /* collection (DESIGN P9): the mesh settles what it may collect; a
     * daemon without the mesh is alone */
    mfs_collect_config cc = {.retention_ms = cfg->trash_ms,
                              .share_pct = cfg->trash_share};
    r = mfs_store_collect_start(d->store, &cc);
    if (r < 0)
        mfs_log(LOG_WARNING,
                "mount: cannot start collection on store %s: %s; the mount "
                "goes on, but frees no space of deleted files until it is "
                "mounted again",
                d->store_dir, strerror(-r));
    if (cfg->trash_ms)
        mfs_log(LOG_INFO,
                "mount: the trash keeps deleted and overwritten "
                "files %.1f days",
                (double)cfg->trash_ms / 86400000.0);

    mfs_fs_config fcfg;
    mfs_fs_config_default(&fcfg);
    fcfg.fsname = d->store_dir;
    fcfg.user_opts = cfg->fuse_opts;
    fcfg.debug = cfg->debug;
    fcfg.stack = cfg->stack;
    fcfg.adopt = cfg->adopt;
    fcfg.store_dir = d->store_dir;
    if (cfg->writeback_cache)
        fcfg.writeback_cache = 1;
    if (cfg->noatime)
        fcfg.relatime = 0;
    if (cfg->writethrough)
        fcfg.write_behind = 0;
    /* root's mounts are for every user; permissions are checked per caller */
    fcfg.allow_other = geteuid() == 0;
    r = mfs_fs_init(&d->fs, d->store, &fcfg, err, errcap);
    d->fs_inited = 1;
    if (r < 0) {
        d->bad_input = r == -EINVAL;
        return r;
    }
    r = mfs_node_start(&d->mesh, d->store, d->store_dir, cfg->listen,
                       cfg->peers, cfg->npeers, err, errcap);
    if (r < 0) {
        d->bad_input = r == -EINVAL;
        return r;
    }
    d->mesh_started = 1;
    acks_resolve(d, cfg);
    mfs_node_acks_attach(&d->mesh, &d->fs, &d->acks);
    d->acks_attached = 1;
    r = mfs_fs_mount(&d->fs, d->mountpoint, err, errcap);
    if (r < 0)
        return r;
    d->ctl.mesh = &d->mesh;
    d->ctl.mounted_here = cfg->mounted_here;
    r = mfs_control_start(&d->ctl, d->store, &d->fs, d->store_dir,
                          d->mountpoint);
    if (r < 0) {
        snprintf(err, errcap, "cannot create the control socket in %s: %s",
                 d->store_dir, strerror(-r));
        return r;
    }
    d->ctl_started = 1;
    if (cfg->http.addr) {
        r = mfs_http_start(&d->http, &cfg->http, &d->ctl, err, errcap);
        if (r < 0) {
            d->bad_input = r == -EINVAL;
            return r;
        }
        mfs_control_set_http(&d->ctl, mfs_http_addr(d->http));
    }
    mfs_rejoin_start(&d->mesh, &d->fs);
    acks_remember(d, cfg);
    return 0;
}

int mfs_daemon_run(mfs_daemon *d)
{
    int r = mfs_fs_run(&d->fs);
    d->ran = r >= 0;
    mfs_log(LOG_NOTICE, "mount: %s on %s: shutting down", d->store_dir,
            d->mountpoint);
    return r;
}

void mfs_daemon_close(mfs_daemon *d)
{
    if (d->mesh_started)
        mfs_rejoin_stop(&d->mesh);
    mfs_http_stop(d->http); /* it reads through the control socket's code */
    d->http = NULL;
    if (d->ctl_started)
        mfs_control_stop(&d->ctl);
    /* fsyncs still waiting for acks get EIO while the session can still
     * carry their replies */
    if (d->acks_attached)
        mfs_node_acks_detach(&d->mesh);
    if (d->fs_inited)
        mfs_fs_close(&d->fs);
    if (d->mesh_started)
        mfs_node_stop(&d->mesh);
    mfs_store_close(d->store);
    d->store = NULL;
    d->fs_inited = d->mesh_started = d->ctl_started = d->acks_attached = 0;
    if (d->ran)
        mfs_log(LOG_NOTICE, "mount: %s unmounted from %s, store closed",
                d->store_dir, d->mountpoint);
    d->ran = 0;
}
