/*
 * systemd.c - the daemon under systemd (systemd.h): sd_notify and the
 * journal, through libsystemd (docs/ARCHITECTURE.md says why).
 *
 * READY=1 goes once the mount answers (the caller says when), STOPPING=1
 * when it shuts down, STATUS= with both. With WatchdogSec= in the unit, a
 * thread asks the mount itself (statfs goes through the kernel to this
 * daemon's FUSE threads) every half period and pings only when it
 * answered: a daemon whose file system hangs is killed and restarted.
 * With stderr connected to the journal (JOURNAL_STREAM names it), each
 * log line goes to the journal with its priority and fields:
 * MESHFS_STORE, MESHFS_MOUNT, MESHFS_NODE always, MESHFS_PEER (a
 * "node <16 hex digits>" the message names) and MESHFS_PATH (its first
 * absolute path) when it names them.
 */
#include "systemd.h"

#include "log.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/statfs.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

static char j_store[1024], j_mount[1024], j_node[24];

/* "node 0123456789abcdef" in msg: the id, else "" */
static void find_peer(const char *msg, char out[17])
{
    out[0] = '\0';
    for (const char *p = strstr(msg, "node "); p; p = strstr(p + 1, "node ")) {
        const char *h = p + 5;
        if (strspn(h, "0123456789abcdef") >= 16 && strcmp(j_node, "") &&
            strncmp(h, j_node, 16)) {
            memcpy(out, h, 16);
            out[16] = '\0';
            return;
        }
    }
}

/* the first absolute path in msg (up to a blank, comma, colon or ')') */
static void find_path(const char *msg, char *out, size_t cap)
{
    out[0] = '\0';
    for (const char *p = msg; *p; p++) {
        if (*p == '/' && (p == msg || p[-1] == ' ' || p[-1] == '(')) {
            size_t n = strcspn(p, " ,:)");
            if (n >= cap)
                n = cap - 1;
            memcpy(out, p, n);
            out[n] = '\0';
            return;
        }
    }
}

static void journal_sink(int level, const char *msg)
{
    char peer[17], path[1024], f[7][1200];
    find_peer(msg, peer);
    find_path(msg, path, sizeof path);
    struct iovec iov[7];
    int n = 0;
    snprintf(f[n++], sizeof f[0], "MESSAGE=%s", msg);
    snprintf(f[n++], sizeof f[0], "PRIORITY=%d", level);
    snprintf(f[n++], sizeof f[0], "MESHFS_STORE=%s", j_store);
    snprintf(f[n++], sizeof f[0], "MESHFS_MOUNT=%s", j_mount);
    if (j_node[0])
        snprintf(f[n++], sizeof f[0], "MESHFS_NODE=%s", j_node);
    if (peer[0])
        snprintf(f[n++], sizeof f[0], "MESHFS_PEER=%s", peer);
    if (path[0])
        snprintf(f[n++], sizeof f[0], "MESHFS_PATH=%s", path);
    for (int i = 0; i < n; i++)
        iov[i] = (struct iovec){f[i], strlen(f[i])};
    static const char *names[] = {"emerg",   "alert",  "crit", "error",
                                  "warning", "notice", "info", "debug"};
    if (sd_journal_sendv(iov, n) < 0) /* no journal after all: stderr */
        fprintf(stderr, "meshfs: %s: %s\n", names[level & 7], msg);
}

/* Is stderr the journal's stream (systemd sets JOURNAL_STREAM=dev:ino)? */
static int stderr_is_journal(void)
{
    const char *e = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!e || sscanf(e, "%llu:%llu", &dev, &ino) != 2 || fstat(2, &st) != 0)
        return 0;
    /* (libsystemd drops lines silently when the journal's socket is
     * missing: then stderr it is) */
    if (access("/run/systemd/journal/socket", W_OK) != 0)
        return 0;
    return (unsigned long long)st.st_dev == dev &&
           (unsigned long long)st.st_ino == ino;
}

int mfs_systemd_journal(const char *store, const char *mount, uint64_t node)
{
    if (!stderr_is_journal())
        return 0;
    snprintf(j_store, sizeof j_store, "%s", store);
    snprintf(j_mount, sizeof j_mount, "%s", mount);
    if (node) /* (0: not known yet; nor are peers told from it) */
        snprintf(j_node, sizeof j_node, "%016" PRIx64, node);
    else
        j_node[0] = '\0';
    mfs_log_set_sink(journal_sink);
    return 1;
}

void mfs_systemd_ready(const char *status)
{
    sd_notifyf(0, "READY=1\nSTATUS=%s", status);
}

void mfs_systemd_stopping(const char *status)
{
    sd_notifyf(0, "STOPPING=1\nSTATUS=%s", status);
}

static char wd_mount[4096];
static uint64_t wd_usec;

static void *watchdog(void *arg)
{
    (void)arg;
    struct statfs sf;
    for (;;) {
        usleep((useconds_t)(wd_usec / 2 > 1000000000u ? 1000000000u
                                                      : wd_usec / 2));
        if (statfs(wd_mount, &sf) == 0)
            sd_notify(0, "WATCHDOG=1");
        else
            mfs_log(LOG_WARNING,
                    "systemd: the mount %s does not answer (%s): no watchdog "
                    "ping (systemd restarts the daemon when they stop)",
                    wd_mount, strerror(errno));
    }
    return NULL;
}

int mfs_systemd_watchdog(const char *mount)
{
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || !usec)
        return 0;
    snprintf(wd_mount, sizeof wd_mount, "%s", mount);
    wd_usec = usec;
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int r = pthread_create(&t, &a, watchdog, NULL);
    pthread_attr_destroy(&a);
    if (r) {
        mfs_log(LOG_WARNING,
                "systemd: cannot start the watchdog thread for %s: %s; "
                "systemd will restart this daemon after WatchdogSec",
                wd_mount, strerror(r));
        return -r;
    }
    sd_notify(0, "WATCHDOG=1");
    mfs_log(LOG_INFO, "systemd: watchdog every %" PRIu64 " ms", usec / 2000);
    return 1;
}
