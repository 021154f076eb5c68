/*
 * rejoin.c - the daemon's half of a rejoin (issue 10). `meshfs join` on a
 * directory that held a store sets the old store aside and leaves
 * STORE/rejoin naming it. Once this node has caught up with its live
 * peers, a thread copies what only the old node had (mfs_store_recover)
 * into /lost+found/<old node>-<date>/, removes the old node from the mesh
 * (the new store replaces it, so it must not hold collection back), and
 * renames STORE/rejoin to STORE/rejoined with what it did. The old store
 * is never touched. Until then `meshfs stat` says that it waits.
 */
#include "internal.h"

#include "fs.h"
#include "log.h"
#include "repl.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REJOIN_POLL_MS 250
#define REJOIN_RETRY_MS 10000

/* STORE/rejoin: "OLD_STORE_PATH\nOLD_NODE_HEX\n", then, once the
 * daemon chose it, "DIR_NAME\n" (the directory in /lost+found: a run cut
 * short by an unmount resumes into it) */
int mfs_rejoin_read(const char *store_dir, char *old, size_t cap,
                    uint64_t *node, char *name, size_t namecap)
{
    char path[PATH_MAX + 16], line[PATH_MAX + 2];
    snprintf(path, sizeof path, "%s/%s", store_dir, MFS_REJOIN_FILE);
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    int r = -EINVAL;
    unsigned long long n = 0;
    if (fgets(line, sizeof line, f) && line[0] == '/') {
        line[strcspn(line, "\n")] = 0;
        char hex[32];
        if (fgets(hex, sizeof hex, f) && sscanf(hex, "%llx", &n) == 1 && n &&
            snprintf(old, cap, "%s", line) < (int)cap)
            r = 0;
    }
    if (name && namecap) {
        name[0] = 0;
        char dn[MFS_NAME_MAX + 2];
        if (r == 0 && fgets(dn, sizeof dn, f)) {
            dn[strcspn(dn, "\n")] = 0;
            if (mfs_name_check(dn) == 0)
                snprintf(name, namecap, "%s", dn);
        }
    }
    fclose(f);
    *node = n;
    return r;
}

int mfs_rejoin_write(const char *store_dir, const char *old, uint64_t node)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/%s", store_dir, MFS_REJOIN_FILE);
    return mfs_write_new_file(path, "%s\n%016" PRIx64 "\n", old, node);
}

/* Adds the chosen directory name to STORE/rejoin (a new file renamed
 * over the old one). */
static int rejoin_write_name(const mfs_node *m, const char *name)
{
    const mfs_rejoin *rj = &m->rj;
    char path[PATH_MAX + 16], tmp[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/%s", m->store_dir, MFS_REJOIN_FILE);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unlink(tmp);
    int r = mfs_write_new_file(tmp, "%s\n%016" PRIx64 "\n%s\n", rj->old_dir,
                               rj->old_node, name);
    if (r == 0 && rename(tmp, path) < 0) {
        r = -errno;
        unlink(tmp);
    }
    return r;
}

/* Caught up: every live peer reported and nothing is left to fetch. */
static bool caught_up(mfs_node *m)
{
    mfs_repl_status st;
    mfs_repl_peer rp[1];
    mfs_repl_status_get(m->repl, &st, rp, 0);
    return st.in_sync && st.live_peers > 0 && !st.chunks_to_go &&
           !st.snap_from && !st.removed_self;
}

static void set_state(mfs_node *m, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_state(mfs_node *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&m->rj.lock);
    vsnprintf(m->rj.state, sizeof m->rj.state, fmt, ap);
    pthread_mutex_unlock(&m->rj.lock);
    va_end(ap);
}

/* One attempt: 0 done, -errno to retry later. */
static int rejoin_once(mfs_node *m)
{
    mfs_rejoin *rj = &m->rj;
    mfs_store *old = NULL;
    int r = mfs_store_open(&old, rj->old_dir, NULL, 0);
    if (r < 0) {
        mfs_log(LOG_ERR,
                "rejoin: cannot open the old store %s: %s; tried again in "
                "%d s",
                rj->old_dir, mfs_store_strerror(r), REJOIN_RETRY_MS / 1000);
        set_state(m, "cannot open the old store %s: %s", rj->old_dir,
                  mfs_store_strerror(r));
        return r;
    }
    mfs_vv vv;
    uint64_t held = 0;
    if ((r = mfs_store_vv(m->store, &vv)) == 0) {
        held = mfs_vv_get(&vv, rj->old_node);
        mfs_vv_free(&vv);
    }
    mfs_attr lf, into;
    char *name = rj->dir_name;
    if (!name[0]) {
        time_t now = time(NULL);
        struct tm tm;
        gmtime_r(&now, &tm);
        int len = snprintf(name, sizeof rj->dir_name, "%016" PRIx64 "-",
                           rj->old_node);
        strftime(name + len, sizeof rj->dir_name - (size_t)len,
                 "%Y%m%d-%H%M%S", &tm);
        if (r == 0)
            r = rejoin_write_name(m, name);
    }
    if (r == 0)
        r = mfs_store_lookup(m->store, MFS_ROOT_INO, "lost+found", &lf);
    if (r == 0) {
        r = mfs_store_mkdir(m->store, lf.ino, name, 0700, (uint32_t)getuid(),
                            (uint32_t)getgid(), &into);
        if (r == -EEXIST) /* an earlier run, cut short: resume into it */
            r = mfs_store_lookup(m->store, lf.ino, name, &into);
    }
    mfs_recover_stats st;
    memset(&st, 0, sizeof st);
    if (r == 0)
        r = mfs_store_recover(m->store, into.ino, old, held, &rj->stop, &st);
    mfs_store_close(old);
    uint64_t kept = st.files + st.symlinks + st.already;
    if (r == 0 && !kept && !st.dirs) {
        r = mfs_store_rmdir(m->store, lf.ino, name); /* nothing to keep */
        if (r == -ENOTEMPTY)
            r = 0;
    }
    if (r == 0)
        r = mfs_store_fsync(m->store, 0);
    if (r == -ECANCELED) {
        mfs_log(LOG_NOTICE,
                "rejoin: stopped by the unmount while keeping the changes of "
                "node %016" PRIx64 "; the next mount resumes into "
                "/lost+found/%s",
                rj->old_node, name);
        return r;
    }
    if (r < 0) {
        mfs_log(LOG_ERR,
                "rejoin: keeping the changes of node %016" PRIx64
                " from %s failed: %s; tried again in %d s (a partial copy "
                "may be in /lost+found/%s)",
                rj->old_node, rj->old_dir, strerror(-r), REJOIN_RETRY_MS / 1000,
                name);
        set_state(m, "keeping node %016" PRIx64 "'s changes failed: %s",
                  rj->old_node, strerror(-r));
        return r;
    }
    if (m->fs)
        mfs_fs_change_cb(m->fs, MFS_CHANGE_ENTRY, lf.ino, name);
    r = mfs_store_member_remove(m->store, rj->old_node);
    if (r < 0 && r != -EALREADY)
        mfs_log(LOG_WARNING,
                "rejoin: cannot remove the old node %016" PRIx64
                " from the mesh: %s (`meshfs remove` it by hand)",
                rj->old_node, strerror(-r));
    char where[MFS_NAME_MAX + 32];
    if (kept || st.dirs)
        snprintf(where, sizeof where, "/lost+found/%s", name);
    else
        snprintf(where, sizeof where, "nowhere (nothing to keep)");
    mfs_log(LOG_NOTICE,
            "rejoin: node %016" PRIx64 " had %" PRIu64
            " change(s) the mesh lacked; kept %" PRIu64 " file(s), %" PRIu64
            " symlink(s), %" PRIu64 " dir(s), %" PRIu64 " bytes in %s%s; "
            "deletes and renames of files the mesh holds are not replayed; "
            "the old store stays in %s",
            rj->old_node, st.ops, st.files + st.already, st.symlinks, st.dirs,
            st.bytes,
            where,
            st.unreadable ? " (some content the old store never had whole "
                            "was left out)"
                          : "",
            rj->old_dir);
    set_state(m,
              "kept %" PRIu64 " file(s) of node %016" PRIx64 " in %s (old "
              "store: %s)",
              kept, rj->old_node, where, rj->old_dir);
    char from[PATH_MAX + 16], to[PATH_MAX + 16];
    snprintf(from, sizeof from, "%s/%s", m->store_dir, MFS_REJOIN_FILE);
    snprintf(to, sizeof to, "%s/%s", m->store_dir, MFS_REJOINED_FILE);
    if (rename(from, to) < 0)
        mfs_log(LOG_WARNING,
                "rejoin: done, but cannot rename %s to %s: %s; the next "
                "mount does the rejoin again (rename it by hand to stop that)",
                from, to, strerror(errno));
    return 0;
}

static void *rejoin_main(void *arg)
{
    mfs_node *m = arg;
    pthread_setname_np(pthread_self(), "mfs-rejoin"); /* top, perf */
    mfs_rejoin *rj = &m->rj;
    uint64_t wait_ms = REJOIN_POLL_MS;
    pthread_mutex_lock(&rj->lock);
    while (!rj->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_sec += (time_t)(wait_ms / 1000);
        ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&rj->cond, &rj->lock, &ts);
        if (rj->stop)
            break;
        pthread_mutex_unlock(&rj->lock);
        int done = 0;
        wait_ms = REJOIN_POLL_MS;
        if (caught_up(m)) {
            done = rejoin_once(m) == 0;
            wait_ms = REJOIN_RETRY_MS;
        }
        pthread_mutex_lock(&rj->lock);
        if (done)
            break;
    }
    pthread_mutex_unlock(&rj->lock);
    return NULL;
}

int mfs_rejoin_start(mfs_node *m, struct mfs_fs *fs)
{
    mfs_rejoin *rj = &m->rj;
    m->fs = fs;
    int r = mfs_rejoin_read(m->store_dir, rj->old_dir, sizeof rj->old_dir,
                            &rj->old_node, rj->dir_name, sizeof rj->dir_name);
    if (r == -ENOENT)
        return 0;
    if (r < 0) {
        mfs_log(LOG_ERR,
                "rejoin: %s/%s is unreadable or malformed: %s; no rejoin "
                "this mount (the old node's changes the mesh lacks are not "
                "copied to /lost+found)",
                m->store_dir, MFS_REJOIN_FILE, strerror(-r));
        return 0;
    }
    pthread_mutex_init(&rj->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&rj->cond, &ca);
    pthread_condattr_destroy(&ca);
    snprintf(rj->state, sizeof rj->state,
             "waiting to catch up, then node %016" PRIx64
             "'s changes the mesh lacks go to /lost+found",
             rj->old_node);
    rj->inited = 1;
    if (pthread_create(&rj->thread, NULL, rejoin_main, m) != 0) {
        mfs_log(LOG_ERR,
                "rejoin: cannot start the thread that keeps the changes of "
                "node %016" PRIx64 " from %s; the mount goes on without it, "
                "and the next mount tries again",
                rj->old_node, rj->old_dir);
        return -EAGAIN;
    }
    rj->started = 1;
    mfs_log(LOG_NOTICE,
            "rejoin: this store replaces node %016" PRIx64
            " (old store %s); once caught up, its changes the mesh lacks "
            "are kept in /lost+found",
            rj->old_node, rj->old_dir);
    return 0;
}

void mfs_rejoin_stop(mfs_node *m)
{
    mfs_rejoin *rj = &m->rj;
    if (!rj->inited)
        return;
    if (rj->started) {
        pthread_mutex_lock(&rj->lock);
        __atomic_store_n(&rj->stop, 1, __ATOMIC_RELAXED);
        pthread_cond_signal(&rj->cond);
        pthread_mutex_unlock(&rj->lock);
        pthread_join(rj->thread, NULL);
        rj->started = 0;
    }
    pthread_cond_destroy(&rj->cond);
    pthread_mutex_destroy(&rj->lock);
    rj->inited = 0;
}

void mfs_rejoin_report(mfs_node *m, void (*line)(void *, const char *),
                       void *arg)
{
    mfs_rejoin *rj = &m->rj;
    if (!rj->inited)
        return;
    char b[sizeof rj->state + 16];
    pthread_mutex_lock(&rj->lock);
    snprintf(b, sizeof b, "rejoin %s", rj->state);
    pthread_mutex_unlock(&rj->lock);
    line(arg, b);
}
