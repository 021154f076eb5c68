/*
 * holder.c - a crashed daemon's mount stays in place for the next one: a
 * small process (the holder, `meshfs-holder`) keeps a copy of the
 * session's /dev/fuse descriptor, so the kernel keeps the mount when the
 * daemon dies. While no daemon serves it, the holder answers every
 * request with ENOTCONN, as a dead mount does (it first asks the kernel,
 * FUSE_NOTIFY_RESEND of Linux 6.9, for the requests the dead daemon had
 * read and not answered). So nothing can land in the directory under the
 * mount point, and no detach is needed, with or without root. The next
 * `meshfs mount` of the store takes the mount over: it asks the holder
 * for the descriptor (SCM_RIGHTS over a unix socket in the store
 * directory) and feeds its session the kernel's INIT, which the holder
 * kept (the kernel negotiated with the dead daemon and ignores the new
 * answer). File handles the dead daemon gave out are adopted by fs/ops.c.
 *
 * Why errors and not a wait: the dead daemon may have answered changes
 * it had not committed yet (a kill -9 loses them; docs/FS.md "What a crash
 * loses"). A program that waited through the restart would then see its
 * close() or fsync() succeed on the new daemon and never learn of the
 * loss; with ENOTCONN it does, as before the holder.
 *
 * The holder exits when the daemon says goodbye (a clean unmount), when
 * the mount is gone, or when `meshfs umount` asks it to let go (then the
 * mount is dead, and detached). It is exec'd (/proc/self/exe as
 * "meshfs-holder"), not forked, because the daemon has threads by then,
 * and it never touches the store.
 *
 * Protocol (SOCK_SEQPACKET, one message each way, the first byte says
 * what): the daemon that starts the holder sends 'I' + the INIT request's
 * bytes over a socketpair, which stays open while the daemon lives. A
 * client of STORE/fuse.hold (same user, or root) sends 'Q' (query: "L" a
 * daemon serves the mount; "D" + the mount point: none, held), 'A'
 * (adopt: "F" + the INIT bytes, with the descriptor; that connection is
 * then the daemon's) or 'R' (release, for umount: "K" and the holder
 * exits; "L" if a daemon serves the mount). A daemon shutting down sends
 * 'B'.
 */
#include "fs.h"

#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define HOLD_MSG_MAX 65536 /* an INIT request is ~100 bytes */
/* a request's room: max_write (1 MiB, fs.c) and its header */
#define HOLD_REQ_MAX ((1u << 20) + 65536)
#define HOLD_CLIENT_MS 2000 /* a client that says nothing is dropped */

/* The socket's address: through an O_PATH descriptor of the store
 * directory, so any store path fits in sun_path. *dirfd to close. */
static int hold_addr(const char *store_dir, struct sockaddr_un *sa, int *dirfd)
{
    *dirfd = open(store_dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (*dirfd < 0)
        return -errno;
    memset(sa, 0, sizeof *sa);
    sa->sun_family = AF_UNIX;
    snprintf(sa->sun_path, sizeof sa->sun_path, "/proc/self/fd/%d/%s", *dirfd,
             MFS_HOLDER_SOCK);
    return 0;
}

/* The kernel's protocol, as much as the holder needs (linux/fuse.h). */
#define OP_FORGET 2
#define OP_INTERRUPT 36
#define OP_BATCH_FORGET 42
#define NOTIFY_RESEND 7
typedef struct {
    uint32_t len, opcode;
    uint64_t unique, nodeid;
    uint32_t uid, gid, pid;
    uint16_t extlen, pad;
} in_header;
typedef struct {
    uint32_t len;
    int32_t error;
    uint64_t unique;
} out_header;
_Static_assert(sizeof(in_header) == 40 && sizeof(out_header) == 16,
               "the FUSE headers");

/* Answers the requests waiting on fd (nonblocking) with ENOTCONN, as a
 * dead mount would. */
static void answer_dead(int fd, uint8_t *buf)
{
    for (;;) {
        ssize_t n = read(fd, buf, HOLD_REQ_MAX);
        if (n < (ssize_t)sizeof(in_header))
            return; /* EAGAIN: none left; ENODEV: unmounted */
        const in_header *h = (const in_header *)buf;
        if (h->opcode == OP_FORGET || h->opcode == OP_BATCH_FORGET ||
            h->opcode == OP_INTERRUPT)
            continue; /* not answered */
        out_header o = {sizeof o, -ENOTCONN, h->unique};
        if (write(fd, &o, sizeof o) < 0 && errno == ENODEV)
            return;
    }
}

/* Is the mount with device number dev ("MAJ:MIN") still in our mount
 * namespace? */
static int mount_present(const char *dev)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    if (!f)
        return 1; /* cannot tell: keep holding until the wait ends */
    char line[8192], d[64];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = sscanf(line, "%*s %*s %63s", d) == 1 && !strcmp(d, dev);
    fclose(f);
    return found;
}

static int peer_ok(int c)
{
    struct ucred cr;
    socklen_t len = sizeof cr;
    return getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 &&
           (cr.uid == getuid() || cr.uid == 0);
}

/* Sends type + data, with fd attached if fd >= 0. */
static int send_msg(int s, char type, const void *data, size_t len, int fd)
{
    char head = type;
    struct iovec iov[2] = {{&head, 1}, {(void *)data, len}};
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    struct msghdr m = {.msg_iov = iov, .msg_iovlen = len ? 2 : 1};
    if (fd >= 0) {
        memset(&u, 0, sizeof u);
        m.msg_control = u.buf;
        m.msg_controllen = sizeof u.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof fd);
    }
    return sendmsg(s, &m, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* Receives one message into buf (cap bytes): its length, 0 at EOF, or
 * -errno; *fd the descriptor it carried, or -1. */
static ssize_t recv_msg(int s, void *buf, size_t cap, int *fd)
{
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } u;
    struct iovec iov = {buf, cap};
    struct msghdr m = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = u.buf,
                       .msg_controllen = sizeof u.buf};
    if (fd)
        *fd = -1;
    ssize_t n = recvmsg(s, &m, MSG_CMSG_CLOEXEC);
    if (n < 0)
        return -errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            int got;
            memcpy(&got, CMSG_DATA(c), sizeof got);
            if (fd && *fd < 0)
                *fd = got;
            else
                close(got);
        }
    if (m.msg_flags & MSG_TRUNC)
        return -EMSGSIZE;
    return n;
}

/* ---- the holder process ---- */

int mfs_fs_holder_main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "meshfs-holder: started by the meshfs daemon only\n");
        return 2;
    }
    int fuse_fd = atoi(argv[1]), d = atoi(argv[2]);
    const char *store = argv[3], *mnt = argv[4], *dev = argv[5];
    prctl(PR_SET_NAME, MFS_HOLDER_ARGV0); /* not "exe" in top and ps -e */
    mfs_log_to_syslog("meshfs");
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, SIG_IGN); /* a Ctrl-C of `mount -f` stops the daemon */
    if (chdir("/") < 0)      /* never keep the mount point busy */
        return 1;
    static uint8_t init[HOLD_MSG_MAX];
    ssize_t n = recv_msg(d, init, sizeof init, NULL);
    if (n < 2 || init[0] != 'I')
        return 1; /* the daemon died before it said the INIT */
    size_t initlen = (size_t)n - 1;
    memmove(init, init + 1, initlen);
    struct sockaddr_un sa;
    int dirfd;
    if (hold_addr(store, &sa, &dirfd) < 0)
        return 1;
    int l = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    unlinkat(dirfd, MFS_HOLDER_SOCK, 0); /* an earlier holder's, gone */
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        listen(l, 4) < 0) {
        mfs_log(LOG_WARNING,
                "holder of %s: cannot listen on %s/%s: %s; a crash of the "
                "daemon leaves a dead mount",
                mnt, store, MFS_HOLDER_SOCK, strerror(errno));
        return 1;
    }
    uint8_t *req = malloc(HOLD_REQ_MAX);
    int fl = fcntl(fuse_fd, F_GETFL);
    if (!req || fl < 0)
        return 1;
    for (;;) {
        /* no daemon: the requests too, and now and then the mount */
        struct pollfd p[2] = {{l, POLLIN, 0},
                              {d >= 0 ? d : fuse_fd, POLLIN, 0}};
        if (poll(p, 2, d >= 0 ? -1 : 1000) < 0 && errno != EINTR)
            break;
        if (d < 0 && p[1].revents & (POLLERR | POLLHUP | POLLNVAL))
            break; /* unmounted */
        if (d < 0 && p[1].revents & POLLIN)
            answer_dead(fuse_fd, req);
        if (d >= 0 && p[1].revents) {
            char b[16];
            ssize_t r = recv(d, b, sizeof b, 0);
            if (r > 0 && b[0] == 'B')
                break; /* unmounted cleanly */
            if (r <= 0) {
                close(d);
                d = -1;
                fcntl(fuse_fd, F_SETFL, fl | O_NONBLOCK);
                /* what the dead daemon had read, to answer too */
                out_header rs = {sizeof rs, NOTIFY_RESEND, 0};
                if (write(fuse_fd, &rs, sizeof rs) < 0)
                    mfs_log(LOG_DEBUG, "holder of %s: no resend: %s", mnt,
                            strerror(errno));
                mfs_log(LOG_WARNING,
                        "holder of %s: the daemon died; the mount answers "
                        "ENOTCONN until `meshfs mount --store %s %s` takes "
                        "it over",
                        mnt, store, mnt);
            }
        }
        if (p[0].revents & POLLIN) {
            int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
            if (c < 0)
                continue;
            struct timeval tv = {HOLD_CLIENT_MS / 1000,
                                 (HOLD_CLIENT_MS % 1000) * 1000};
            setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            char q = 0;
            if (!peer_ok(c) || recv(c, &q, 1, 0) != 1) {
                close(c);
                continue;
            }
            if (d >= 0) {
                send_msg(c, 'L', NULL, 0, -1);
                close(c);
            } else if (q == 'Q') {
                send_msg(c, 'D', mnt, strlen(mnt), -1);
                close(c);
            } else if (q == 'A') {
                fcntl(fuse_fd, F_SETFL, fl); /* as the daemon had it */
                if (send_msg(c, 'F', init, initlen, fuse_fd) != 0) {
                    fcntl(fuse_fd, F_SETFL, fl | O_NONBLOCK);
                    close(c);
                    continue;
                }
                tv = (struct timeval){0, 0};
                setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                d = c; /* the new daemon's: its end tells us it died */
                mfs_log(LOG_NOTICE,
                        "holder of %s: a new daemon took the "
                        "mount over",
                        mnt);
            } else if (q == 'R') {
                send_msg(c, 'K', NULL, 0, -1);
                mfs_log(LOG_NOTICE,
                        "holder of %s: let the mount go for an unmount", mnt);
                break; /* c stays open: its end sees EOF once we are gone */
            } else {
                close(c);
            }
        }
        if (d < 0 && !mount_present(dev))
            break; /* unmounted meanwhile */
    }
    free(req);
    unlinkat(dirfd, MFS_HOLDER_SOCK, 0);
    close(fuse_fd); /* before the exit closes the client's socket */
    return 0;
}

/* ---- the daemon's side ---- */

int mfs_fs_holder_start(const char *store_dir, const char *mountpoint,
                        const char *dev, int fuse_fd, const void *init,
                        size_t initlen)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return -errno;
    /* the holder gets the two descriptors as 3 and 4 and nothing else: one
     * of the store's files (a pack, the unpublished blocks) held open
     * there would keep its disk space from ever coming back */
    char *argv[] = {MFS_HOLDER_ARGV0,   "3",         "4", (char *)store_dir,
                    (char *)mountpoint, (char *)dev, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    /* copies above 4, so that the first dup2 overwrites neither */
    int ff = fcntl(fuse_fd, F_DUPFD_CLOEXEC, 5);
    int ss = fcntl(sv[1], F_DUPFD_CLOEXEC, 5);
    close(sv[1]);
    if (ff < 0 || ss < 0) {
        int e = -errno;
        if (ff >= 0)
            close(ff);
        if (ss >= 0)
            close(ss);
        close(sv[0]);
        posix_spawn_file_actions_destroy(&fa);
        posix_spawnattr_destroy(&at);
        return e;
    }
    posix_spawn_file_actions_adddup2(&fa, ff, 3);
    posix_spawn_file_actions_adddup2(&fa, ss, 4);
    posix_spawn_file_actions_addclosefrom_np(&fa, 5);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDWR, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_RDWR, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_RDWR, 0);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&at, &none);
    /* its own session: a signal to the daemon's group spares it */
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSID);
    pid_t pid;
    extern char **environ;
    int r = posix_spawn(&pid, "/proc/self/exe", &fa, &at, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close(ff);
    close(ss);
    if (r == 0)
        r = send_msg(sv[0], 'I', init, initlen, -1);
    else
        r = -r;
    if (r < 0) {
        close(sv[0]);
        return r;
    }
    return sv[0]; /* kept open while the daemon lives */
}

void mfs_fs_holder_bye(int sock)
{
    if (sock < 0)
        return;
    send_msg(sock, 'B', NULL, 0, -1);
    close(sock);
}

/* Connects to the store's holder and sends req. The socket or -errno
 * (-ENOENT/-ECONNREFUSED: no holder). */
static int hold_call(const char *store_dir, char req)
{
    struct sockaddr_un sa;
    int dirfd;
    int r = hold_addr(store_dir, &sa, &dirfd);
    if (r < 0)
        return r;
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
        r = -errno;
        if (s >= 0)
            close(s);
        close(dirfd);
        return r;
    }
    close(dirfd);
    struct timeval tv = {HOLD_CLIENT_MS / 1000, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (send(s, &req, 1, MSG_NOSIGNAL) != 1) {
        r = -errno;
        close(s);
        return r;
    }
    return s;
}

int mfs_fs_holder_query(const char *store_dir, char *mnt, size_t cap)
{
    int s = hold_call(store_dir, 'Q');
    if (s < 0)
        return MFS_HOLD_NONE;
    char buf[4097];
    ssize_t n = recv_msg(s, buf, sizeof buf - 1, NULL);
    close(s);
    if (n >= 1 && buf[0] == 'D') {
        buf[n] = 0;
        snprintf(mnt, cap, "%s", buf + 1);
        return MFS_HOLD_WAITING;
    }
    return n >= 1 && buf[0] == 'L' ? MFS_HOLD_LIVE : MFS_HOLD_NONE;
}

int mfs_fs_holder_adopt(const char *store_dir, int *fuse_fd, void *init,
                        size_t *initlen)
{
    int s = hold_call(store_dir, 'A');
    if (s < 0)
        return s;
    static uint8_t buf[HOLD_MSG_MAX];
    int fd;
    ssize_t n = recv_msg(s, buf, sizeof buf, &fd);
    if (n < 2 || buf[0] != 'F' || fd < 0 || (size_t)n - 1 > *initlen) {
        if (fd >= 0)
            close(fd);
        close(s);
        return n >= 1 && buf[0] == 'L' ? -EBUSY : -EPROTO;
    }
    struct timeval tv = {0, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    *initlen = (size_t)n - 1;
    memcpy(init, buf + 1, *initlen);
    *fuse_fd = fd;
    return s; /* kept open while this daemon lives */
}

int mfs_fs_holder_release(const char *store_dir)
{
    int s = hold_call(store_dir, 'R');
    if (s < 0)
        return 0;
    char b[8];
    ssize_t n = recv(s, b, sizeof b, 0);
    if (n >= 1 && b[0] == 'L') {
        close(s);
        return -EBUSY;
    }
    /* EOF once the holder has closed the descriptor and exited: the
     * mount is dead then */
    while (n > 0)
        n = recv(s, b, sizeof b, 0);
    close(s);
    return 1;
}
