/*
 * mount.c - `meshfs mount` (and the daemon it starts) and `meshfs umount`.
 *
 * mount checks everything it can before it forks (mount point, /dev/fuse,
 * store state), then forks a daemon that opens the node (node/daemon.h:
 * the store with its single-writer lock, the mesh, the mount, the control
 * socket) and only then reports "ready" through a pipe; the parent exits 0
 * on ready or prints the daemon's one-line error and exits 1 (2 for bad
 * options). A mount point left behind by a killed daemon ("Transport
 * endpoint is not connected") is mounted over (root: fs/stack.c), so that
 * nothing a program writes by path meanwhile lands in the directory
 * underneath; without root it is detached first.
 *
 * umount asks the daemon to publish and fsync, unmounts (not lazily: a busy
 * mount point is an error and changes nothing) and waits for the daemon to
 * exit. Neither ever touches a store directly except through the store API
 * in the daemon.
 */
#include "cli.h"
#include "http.h"
#include "daemon.h"
#include "log.h"
#include "systemd.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct mount_job {
    char store[PATH_MAX];
    char mnt[PATH_MAX];
    char fuse_opts[4096]; /* -o minus our own options */
    int stack;            /* mount over a killed daemon's dead mount */
    int adopt;            /* take the mount over from its holder */
    int create;           /* the store dir is missing or empty */
    int foreground;
    int debug;
    int writeback; /* bit 0: -o writeback; bit 1: -o noatime; bit 2:
                    * -o writethrough */
    int report_fd; /* write end of the readiness pipe, or -1 */
    const char *listen;
    const char *const *peers;
    size_t npeers;
    uint64_t trash_ms; /* -o trash=DAYS: retention of deleted/overwritten */
    uint32_t
        trash_share; /* -o trash-share=PCT: the trash's share of the disk */
    mfs_acks_config acks; /* --acks N and the rest, -o acks=N and the rest */
    unsigned acks_given;  /* which of them were given: MFS_DAEMON_ACKS_* */
    char http[80];        /* --http, -o http=: the status page (node/http.h) */
    int http_public, metrics_open;
} mount_job;

/* Tells the waiting parent how startup went: "0\n" ready, or
 * "<exit code> <message>\n". */
static void report(mount_job *j, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void report(mount_job *j, int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (j->report_fd < 0) {
        if (code)
            fprintf(stderr, "meshfs: %s\n", msg);
        return;
    }
    char line[1100];
    int n = snprintf(line, sizeof line, "%d %s\n", code, msg);
    if (n > 0 && write(j->report_fd, line, (size_t)n) < 0)
        mfs_log(LOG_ERR,
                "mount: cannot tell the waiting `meshfs mount` how the mount "
                "on %s went (\"%s\"): %s; this line is the only report",
                j->mnt, msg, strerror(errno));
    close(j->report_fd);
    j->report_fd = -1;
}

/* The control socket's "stop": does mnt still show this store here? */
static int mounted_here(const char *mnt, const char *store)
{
    cli_mount m;
    return cli_mount_at(mnt, &m) == 1 && cli_mount_is_meshfs(&m) &&
           strcmp(m.source, store) == 0;
}

/* Runs the node (node/daemon.h) in the daemon, or in the foreground
 * process. Returns the exit code. */
static int daemon_run(mount_job *j)
{
    mfs_daemon d;
    char err[512];
    mfs_daemon_config cfg = {
        .store_dir = j->store,
        .mountpoint = j->mnt,
        .create = j->create,
        .fuse_opts = j->fuse_opts,
        .debug = j->debug,
        .writeback_cache = j->writeback & 1,
        .noatime = (j->writeback & 2) != 0,
        .writethrough = (j->writeback & 4) != 0,
        .stack = j->stack,
        .adopt = j->adopt,
        .listen = j->listen,
        .peers = j->peers,
        .npeers = j->npeers,
        .trash_ms = j->trash_ms,
        .trash_share = j->trash_share,
        .acks = j->acks,
        .acks_given = j->acks_given,
        .http = {.addr = j->http[0] ? j->http : NULL,
                 .public_ok = j->http_public,
                 .metrics_open = j->metrics_open},
        .mounted_here = mounted_here,
    };
    if (j->foreground) /* under systemd: the journal, with priorities */
        mfs_systemd_journal(j->store, j->mnt, 0);
    int r = mfs_daemon_open(&d, &cfg, err, sizeof err);
    if (r < 0) {
        int code = d.bad_input ? CLI_USAGE : CLI_FAIL;
        report(j, code, "%s", err);
        mfs_daemon_close(&d);
        return code;
    }
    char status[PATH_MAX * 2 + 64];
    snprintf(status, sizeof status, "%s mounted on %s", j->store, j->mnt);
    if (j->foreground) {
        mfs_systemd_journal(j->store, j->mnt, mfs_store_node_id(d.store));
        mfs_systemd_ready(status);
        mfs_systemd_watchdog(j->mnt);
    }
    if (j->report_fd >= 0) {
        /* detach from the terminal only now: errors above went to it */
        int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
        mfs_log_to_syslog("meshfs");
        mfs_log(LOG_NOTICE, "mount: %s mounted on %s (pid %ld)", j->store,
                j->mnt, (long)getpid());
        report(j, 0, "ready");
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
            dup2(devnull, 2);
            close(devnull);
        }
    }
    r = mfs_daemon_run(&d);
    if (j->foreground) {
        snprintf(status, sizeof status, "unmounting %s from %s", j->store,
                 j->mnt);
        mfs_systemd_stopping(status);
    }
    mfs_daemon_close(&d);
    return r < 0 ? CLI_FAIL : CLI_OK;
}

/* -o trash=DAYS: a number of days >= 0 (fractions allowed), at most
 * 100 years. 0 and the milliseconds, or -1. */
static int parse_days(const char *v, uint64_t *ms)
{
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (errno || end == v || *end || !(d >= 0) || d > 36500)
        return -1;
    *ms = (uint64_t)(d * 86400.0 * 1000.0);
    return 0;
}

_Static_assert(CLI_ACKS_TIMEOUT_MAX_S * 1000u == MFS_DAEMON_ACKS_TIMEOUT_MAX_MS,
               "the command line and STORE/acks bound the timeout alike");

/* -o acks=N, acks-timeout=SECONDS, acks-wait, acks-on-close into j. 1 if
 * t was one of them, 0 if not, CLI_USAGE (message printed). */
static int take_acks_opt(const char *t, mount_job *j)
{
    if (strcmp(t, "acks-wait") == 0) {
        j->acks.wait = 1;
        j->acks_given |= MFS_DAEMON_ACKS_WAIT;
    } else if (strcmp(t, "acks-on-close") == 0) {
        j->acks.on_close = 1;
        j->acks_given |= MFS_DAEMON_ACKS_ON_CLOSE;
    } else if (strncmp(t, "acks-timeout=", 13) == 0) {
        if (cli_parse_seconds(t + 13, CLI_ACKS_TIMEOUT_MAX_S,
                              &j->acks.timeout_ms) < 0) {
            fprintf(stderr,
                    "meshfs: bad -o %s: how long fsync waits for the acks, "
                    "in seconds (more than 0, at most %d)\n",
                    t, CLI_ACKS_TIMEOUT_MAX_S);
            return CLI_USAGE;
        }
        j->acks_given |= MFS_DAEMON_ACKS_TIMEOUT;
    } else if (strncmp(t, "acks=", 5) == 0) {
        if (cli_parse_count(t + 5, MFS_ACKS_MAX, &j->acks.n) < 0) {
            fprintf(stderr,
                    "meshfs: bad -o %s: how many members must hold a change "
                    "before fsync returns (0 to %d; 0: off)\n",
                    t, MFS_ACKS_MAX);
            return CLI_USAGE;
        }
        j->acks_given |= MFS_DAEMON_ACKS_N;
    } else {
        return 0;
    }
    return 1;
}

/* --acks N, --acks-timeout, --acks-wait: after -o, so they win. */
static void take_acks_flags(const cli_args *a, mount_job *j)
{
    if (a->acks >= 0) {
        j->acks.n = (unsigned)a->acks;
        j->acks_given |= MFS_DAEMON_ACKS_N;
    }
    if (a->acks_timeout_ms) {
        j->acks.timeout_ms = a->acks_timeout_ms;
        j->acks_given |= MFS_DAEMON_ACKS_TIMEOUT;
    }
    if (a->acks_wait) {
        j->acks.wait = 1;
        j->acks_given |= MFS_DAEMON_ACKS_WAIT;
    }
}

/* Moves our own options from in to j (the rest to j->fuse_opts); returns
 * 1 if nonempty was given, 0, or CLI_USAGE (message printed). */
static int take_opts(const char *in, mount_job *j)
{
    char tmp[4096];
    int nonempty = 0;
    char *out = j->fuse_opts;
    size_t cap = sizeof j->fuse_opts;
    snprintf(tmp, sizeof tmp, "%s", in);
    out[0] = '\0';
    char *save = NULL;
    for (char *t = strtok_r(tmp, ",", &save); t;
         t = strtok_r(NULL, ",", &save)) {
        if (strcmp(t, "nonempty") == 0) {
            nonempty = 1;
            continue;
        }
        if (strcmp(t, "debug") == 0) {
            j->debug = 1;
            continue;
        }
        if (strcmp(t, "writeback") == 0) {
            j->writeback |= 1;
            continue;
        }
        if (strcmp(t, "writethrough") == 0) {
            j->writeback |= 4;
            continue;
        }
        if (strncmp(t, "http=", 5) == 0) {
            if (!cli_host_port_ok(t + 5) || strlen(t + 5) >= sizeof j->http) {
                fprintf(stderr,
                        "meshfs: bad -o %s: the status page's address "
                        "(IP:PORT)\n",
                        t);
                return CLI_USAGE;
            }
            snprintf(j->http, sizeof j->http, "%s", t + 5);
            continue;
        }
        if (strcmp(t, "http-public") == 0) {
            j->http_public = 1;
            continue;
        }
        if (strcmp(t, "metrics-open") == 0) {
            j->metrics_open = 1;
            continue;
        }
        int acks = take_acks_opt(t, j);
        if (acks == CLI_USAGE)
            return CLI_USAGE;
        if (acks)
            continue;
        if (strncmp(t, "trash=", 6) == 0) {
            if (parse_days(t + 6, &j->trash_ms) < 0) {
                fprintf(stderr,
                        "meshfs: bad -o %s: the trash keeps deleted and "
                        "overwritten files for DAYS days (a number >= 0; 0 "
                        "turns it off)\n",
                        t);
                return CLI_USAGE;
            }
            continue;
        }
        if (strncmp(t, "trash-share=", 12) == 0) {
            char *end;
            errno = 0;
            unsigned long v = strtoul(t + 12, &end, 10);
            if (errno || end == t + 12 || *end || v < 1 || v > 100) {
                fprintf(stderr,
                        "meshfs: bad -o %s: the trash takes at most PCT "
                        "percent of the store's file system (1 to 100; "
                        "100: no bound)\n",
                        t);
                return CLI_USAGE;
            }
            j->trash_share = (uint32_t)v;
            continue;
        }
        if (strcmp(t, "noatime") == 0)
            j->writeback |= 2; /* also passed on: it shows in mountinfo */
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "%s%s", len ? "," : "", t);
    }
    return nonempty;
}

/* Resolves j->mnt's directory, not the mount point itself: looking into
 * a dead mount gives ENOTCONN, into a held one waits for a daemon. */
static void resolve_parent(mount_job *j)
{
    char parent[PATH_MAX], real[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", j->mnt);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent && slash[1]) {
        *slash = '\0';
        size_t rl, bl = strlen(slash + 1);
        if (realpath(parent, real) &&
            (rl = strlen(real)) + bl + 2 <= sizeof j->mnt) {
            if (rl == 1)
                rl = 0; /* "/" */
            memcpy(j->mnt, real, rl);
            j->mnt[rl] = '/';
            memcpy(j->mnt + rl + 1, slash + 1, bl + 1);
        }
    }
}

/* The store's mount that a crashed daemon left to its holder (fs/holder.c)
 * is taken over, not mounted again: programs using it never saw it go.
 * Sets j->adopt; 0, or CLI_FAIL (it waits elsewhere). */
static int held_mount(mount_job *j)
{
    char held[PATH_MAX];
    int q = mfs_fs_holder_query(j->store, held, sizeof held);
    /* "a daemon serves it" while none answers its control socket: one
     * killed a moment ago whose last threads still hold the holder's
     * socket (a restart right after kill -9 then stacked a new mount:
     * fs_restart, CI rehearsal 6). Wait up to 3 s for the holder to see
     * it gone. */
    for (int i = 0; q == MFS_HOLD_LIVE && i < 150; i++) {
        cli_reply r;
        if (i == 0 && cli_control_call(j->store, "hello", 1000, &r) == 0) {
            cli_reply_free(&r);
            return 0; /* it answers: mounted for real (check_store says) */
        }
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
        q = mfs_fs_holder_query(j->store, held, sizeof held);
    }
    if (q != MFS_HOLD_WAITING)
        return 0;
    resolve_parent(j);
    if (strcmp(held, j->mnt) != 0)
        return cli_fail("the mount of store %s on %s waits for its daemon "
                        "(it crashed): mount it there again (meshfs mount "
                        "--store %s %s) or unmount it (meshfs umount %s)",
                        j->store, held, j->store, held, held);
    j->adopt = 1;
    return 0;
}

/* The dead meshfs mount on j->mnt (a killed daemon's) is mounted over
 * (root) or detached. Its path is resolved without looking into it (that
 * would be ENOTCONN). 1 mounted over, 0 not dead, CLI_FAIL. */
static int dead_mountpoint(mount_job *j)
{
    cli_mount m;
    char err[512];
    /* statfs always asks the daemon; stat may answer from the cache */
    if (!cli_mount_dead(j->mnt))
        return 0;
    resolve_parent(j);
    int f = cli_mount_at(j->mnt, &m);
    if (f == 1 && cli_mount_is_meshfs(&m) && geteuid() == 0) {
        j->stack = 1;
        return 1;
    }
    if (f == 1 && strncmp(m.fstype, "fuse", 4) == 0) {
        if (cli_unmount(j->mnt, 1, err, sizeof err) < 0)
            return cli_fail("mount point %s is a dead FUSE mount and cannot "
                            "be detached: %s",
                            j->mnt, err);
        fprintf(stderr,
                "meshfs: detached the dead mount left on %s by a daemon "
                "that was killed (without root it cannot be mounted over: "
                "until this mount is up, what programs write there lands "
                "in the directory underneath)\n",
                j->mnt);
    }
    return 0;
}

/* This store's mount on j->mnt is not dead, yet no daemon answers its
 * control socket: a daemon killed a moment ago whose last threads still
 * hold /dev/fuse (its process shows as gone, a zombie, while they exit:
 * a restart right after kill -9 met this). Waits up to 3 s for the mount
 * to turn dead. 1 if it did. */
static int dying_daemon(const mount_job *j)
{
    cli_reply r;
    int rc = cli_control_call(j->store, "hello", 1000, &r);
    if (rc == 0) {
        cli_reply_free(&r);
        return 0; /* it answers: mounted for real */
    }
    for (int i = 0; i < 150; i++) {
        if (cli_mount_dead(j->mnt))
            return 1;
        struct timespec ts = {0, 20 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    return cli_mount_dead(j->mnt);
}

/* Checks the mount point (see dead_mountpoint for a killed daemon's).
 * Returns 0 or CLI_FAIL (message printed). */
static int check_mountpoint(mount_job *j, int nonempty)
{
    struct stat st;
    cli_mount m;
    int r = dead_mountpoint(j);
    if (r)
        return r == 1 ? 0 : r;
    if (stat(j->mnt, &st) < 0) {
        int e = errno;
        if (e == ENOENT)
            return cli_fail("mount point does not exist: %s", j->mnt);
        if (e == EACCES)
            return cli_fail("no permission to use mount point: %s", j->mnt);
        return cli_fail("cannot use mount point %s: %s", j->mnt, strerror(e));
    }
    if (!S_ISDIR(st.st_mode))
        return cli_fail("mount point is not a directory: %s", j->mnt);
    char real[PATH_MAX];
    if (!realpath(j->mnt, real))
        return cli_fail("cannot resolve mount point %s: %s", j->mnt,
                        strerror(errno));
    snprintf(j->mnt, sizeof j->mnt, "%s", real);
    if (cli_mount_at(j->mnt, &m) == 1) {
        if (cli_mount_is_meshfs(&m) && strcmp(m.source, j->store) == 0) {
            if (dying_daemon(j))
                return check_mountpoint(j, nonempty); /* dead now */
            return cli_fail("mount point is busy: %s: this store is already "
                            "mounted there",
                            j->mnt);
        }
        return cli_fail("mount point is busy: %s: something (%s) is already "
                        "mounted there",
                        j->mnt, m.fstype);
    }
    if (geteuid() != 0 && access(j->mnt, W_OK) < 0)
        return cli_fail("no permission to mount on %s: %s", j->mnt,
                        strerror(errno));
    int e = mfs_node_dir_empty(j->mnt);
    if (e < 0)
        return cli_fail("cannot read mount point %s: %s", j->mnt, strerror(-e));
    if (e == 0 && !nonempty)
        return cli_fail("mount point is busy: %s is not empty (use -o "
                        "nonempty to mount over its contents)",
                        j->mnt);
    return 0;
}

/* Decides whether the store must be created; refuses a directory that
 * holds something else. */
static int check_store(mount_job *j)
{
    struct stat st;
    char path[PATH_MAX + 16];
    if (stat(j->store, &st) == 0 && !S_ISDIR(st.st_mode))
        return cli_fail("store is not a directory: %s", j->store);
    int e = mfs_node_dir_empty(j->store);
    if (e < 0)
        return cli_fail("cannot read store directory %s: %s", j->store,
                        strerror(-e));
    if (e == 1) {
        j->create = 1;
        return 0;
    }
    snprintf(path, sizeof path, "%s/data.mdb", j->store);
    if (access(path, F_OK) < 0)
        return cli_fail("%s is not empty and holds no meshfs store; refusing "
                        "to use it",
                        j->store);
    /* mounted already? ask its daemon */
    cli_reply rep;
    if (cli_control_call(j->store, "hello", 2000, &rep) == 0) {
        const char *mnt = cli_reply_get(&rep, "mount");
        const char *pid = cli_reply_get(&rep, "pid");
        int code = cli_fail("store %s is already mounted on %s (daemon pid "
                            "%s)",
                            j->store, mnt ? mnt : "?", pid ? pid : "?");
        cli_reply_free(&rep);
        return code;
    }
    return 0;
}

int cli_cmd_mount(int argc, char **argv)
{
    cli_args a;
    mount_job j;
    int is_default, r;

    r = cli_args_parse("mount", argc, argv,
                       CLI_OPT_STORE | CLI_OPT_FG | CLI_OPT_O | CLI_OPT_MESH |
                           CLI_OPT_ACKS | CLI_OPT_HTTP,
                       1, &a);
    if (r)
        return r;
    if (a.npos < 1)
        return cli_usage_error("missing argument", "MOUNTPOINT");
    memset(&j, 0, sizeof j);
    j.report_fd = -1;
    j.foreground = a.foreground;
    j.listen = a.listen;
    j.peers = a.peers;
    j.npeers = (size_t)a.npeers;
    if (cli_store_dir(a.store, j.store, sizeof j.store, &is_default) < 0)
        return cli_fail("cannot find the default store: set HOME, "
                        "MESHFS_STORE or use --store DIR");
    if (cli_abspath(a.pos[0], j.mnt, sizeof j.mnt) < 0)
        return cli_fail("mount point path too long: %s", a.pos[0]);
    j.trash_ms = MFS_COLLECT_RETENTION_DEFAULT_MS;
    int nonempty = take_opts(a.opts, &j);
    if (nonempty == CLI_USAGE)
        return CLI_USAGE;
    take_acks_flags(&a, &j);
    if (a.http) /* after -o: the flag wins */
        snprintf(j.http, sizeof j.http, "%s", a.http);
    j.http_public |= a.http_public;
    j.metrics_open |= a.metrics_open;
    if (j.http[0] || j.http_public || j.metrics_open) {
        char err[512];
        mfs_http_config hc = {.addr = j.http[0] ? j.http : NULL,
                              .public_ok = j.http_public};
        if (!j.http[0])
            return cli_usage_error("--http-public and --metrics-open need",
                                   "--http IP:PORT");
        if (mfs_http_check(&hc, err, sizeof err) < 0) {
            fprintf(stderr, "meshfs: %s\n", err);
            return CLI_USAGE;
        }
        if (mfs_http_probe(&hc, err, sizeof err) < 0)
            return cli_fail("%s", err);
        if (j.http_public)
            fprintf(stderr,
                    "meshfs: warning: the status page listens on %s, which "
                    "is not only this machine's: anyone who reaches it and "
                    "has the token sees this mesh, over plain HTTP\n",
                    j.http);
    }

    if (access("/dev/fuse", F_OK) < 0)
        return cli_fail("/dev/fuse is missing: is the fuse kernel module "
                        "loaded (modprobe fuse)?");
    if (access("/dev/fuse", R_OK | W_OK) < 0 && geteuid() == 0)
        return cli_fail("no permission to open /dev/fuse: %s", strerror(errno));
    if ((r = held_mount(&j)) != 0)
        return r;
    if (!j.adopt && (r = check_mountpoint(&j, nonempty)) != 0)
        return r;
    if ((r = check_store(&j)) != 0)
        return r;

    if (j.foreground)
        return daemon_run(&j);

    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return cli_fail("cannot create a pipe: %s", strerror(errno));
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return cli_fail("cannot start the daemon: %s", strerror(errno));
    if (pid == 0) {
        close(pfd[0]);
        /* hold no descriptor of the caller's (a shell's $(...) pipe would
         * never see EOF): keep stdio until ready and the report pipe */
        int keep = pfd[1];
        if (keep > 3)
            close_range(3, (unsigned)keep - 1, 0);
        close_range((unsigned)keep + 1, ~0u, 0);
        j.report_fd = keep;
        setsid();
        if (chdir("/") < 0)
            _exit(CLI_FAIL);
        signal(SIGPIPE, SIG_IGN);
        _exit(daemon_run(&j));
    }
    close(pfd[1]);
    char buf[1200];
    size_t len = 0;
    ssize_t n;
    while (len < sizeof buf - 1 &&
           ((n = read(pfd[0], buf + len, sizeof buf - 1 - len)) > 0 ||
            (n < 0 && errno == EINTR)))
        if (n > 0)
            len += (size_t)n;
    buf[len] = '\0';
    close(pfd[0]);
    if (len == 0) {
        int st;
        waitpid(pid, &st, 0);
        return cli_fail("the daemon exited during startup (%s %d)",
                        WIFSIGNALED(st) ? "signal" : "status",
                        WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
    }
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
    char *msg = strchr(buf, ' ');
    int code = atoi(buf);
    if (code == 0)
        return CLI_OK; /* the daemon runs on; it is not our child to reap */
    waitpid(pid, NULL, 0);
    fprintf(stderr, "meshfs: %s\n", msg ? msg + 1 : "mount failed");
    return code == CLI_USAGE ? CLI_USAGE : CLI_FAIL;
}

/* ---- umount ------------------------------------------------------------- */

/* Detaches the dead meshfs mounts stacked on mnt (killed daemons'), the
 * topmost first. How many, or -1 (err says why). */
static int detach_dead(const char *mnt, char *err, size_t errcap)
{
    cli_mount m;
    int n = 0;
    while (n < 4096 && cli_mount_dead(mnt) && cli_mount_at(mnt, &m) == 1 &&
           strncmp(m.fstype, "fuse", 4) == 0) {
        if (cli_unmount(mnt, 1, err, errcap) < 0)
            return -1;
        n++;
    }
    return n;
}

static int pid_alive(long pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "re");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

int cli_cmd_umount(int argc, char **argv)
{
    cli_args a;
    char mnt[PATH_MAX], err[512];
    cli_mount m;
    int r = cli_args_parse("umount", argc, argv, 0, 1, &a);
    if (r)
        return r;
    if (a.npos < 1)
        return cli_usage_error("missing argument", "MOUNTPOINT");
    if (cli_abspath(a.pos[0], mnt, sizeof mnt) < 0)
        return cli_fail("path too long: %s", a.pos[0]);
    /* a mount whose daemon crashed and whose holder waits for the next
     * (fs/holder.c) would make every look into it wait: let it go first,
     * then it is dead and detached below */
    if (cli_mount_at(mnt, &m) == 1 && cli_mount_is_meshfs(&m) &&
        mfs_fs_holder_release(m.source) == 1)
        fprintf(stderr,
                "meshfs: the daemon of %s had crashed; its holder let the "
                "mount go\n",
                mnt);
    char real[PATH_MAX];
    if (realpath(mnt, real))
        snprintf(mnt, sizeof mnt, "%s", real);
    r = cli_mount_at(mnt, &m);
    if (r < 0)
        return cli_fail("cannot read the mount table: %s", strerror(-r));
    if (r == 0 || !cli_mount_is_meshfs(&m))
        return cli_fail("not a meshfs mount: %s", mnt);

    long pid = 0;
    cli_reply rep;
    r = cli_control_call(m.source, "hello", 5000, &rep);
    if (r == 0) {
        const char *p = cli_reply_get(&rep, "pid");
        const char *dm = cli_reply_get(&rep, "mount");
        if (p)
            pid = atol(p);
        if (dm && strcmp(dm, mnt) != 0)
            pid = 0; /* the store's daemon serves another mount point */
        cli_reply_free(&rep);
    }
    if (pid > 0) {
        r = cli_control_call(m.source, "flush", 120000, &rep);
        if (r < 0)
            return cli_fail("the daemon of %s did not answer the flush "
                            "request: %s",
                            mnt, strerror(-r));
        if (rep.err) {
            int code = cli_fail("flushing %s failed: %s; not unmounting", mnt,
                                rep.msg);
            cli_reply_free(&rep);
            return code;
        }
        cli_reply_free(&rep);
    } else {
        if (cli_mount_dead(mnt)) {
            int n = detach_dead(mnt, err, sizeof err);
            if (n < 0)
                return cli_fail("%s", err);
            fprintf(stderr,
                    "meshfs: the daemon of %s was gone; detached "
                    "the dead mount%s\n",
                    mnt, n > 1 ? "s stacked there" : "");
            return CLI_OK;
        }
        fprintf(stderr,
                "meshfs: warning: the daemon of %s does not answer "
                "on its control socket; unmounting anyway\n",
                mnt);
    }
    if (cli_unmount(mnt, 0, err, sizeof err) < 0)
        return cli_fail("%s", err);
    /* The daemon sees the unmount and exits. If a copy of the mount lives
     * on in another mount namespace the kernel keeps the file system, and
     * the daemon, alive: tell it to stop (harmless if it is exiting). */
    if (pid > 0 && cli_control_call(m.source, "stop", 2000, &rep) == 0)
        cli_reply_free(&rep);
    /* the daemon publishes, fsyncs and closes the store, then exits */
    for (int i = 0; pid > 0 && pid_alive(pid); i++) {
        if (i >= 6000)
            return cli_fail("unmounted %s, but daemon %ld has not exited "
                            "after 60 s",
                            mnt, pid);
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    /* under it, the dead mounts of killed daemons it was mounted over */
    if (detach_dead(mnt, err, sizeof err) < 0)
        return cli_fail("unmounted %s, but %s", mnt, err);
    return CLI_OK;
}
