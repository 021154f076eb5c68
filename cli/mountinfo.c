/*
 * mountinfo.c - finding mounts in /proc/self/mountinfo, and unmounting.
 *
 * A meshfs mount shows as type "fuse.meshfs" with the store directory as
 * its source, which is how `meshfs umount`, `stat`, `trash`, `restore` and
 * `sync` find the store (and so the control socket) of a mount point or of
 * a path in it. Read-only except cli_unmount().
 */
#include "cli.h"
#include "fs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

/* Undoes the octal escapes (\040 space, \011 tab, \012 newline, \134). */
static void unescape(char *s)
{
    char *w = s;
    for (char *r = s; *r;) {
        if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' &&
            r[2] <= '7' && r[3] >= '0' && r[3] <= '7') {
            *w++ = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
            r += 4;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
}

/* Parses one mountinfo line into m. Returns 0 or -1. */
static int parse_line(char *line, cli_mount *m)
{
    char *save = NULL, *tok;
    int field = 0, after_dash = 0, k = 0;
    memset(m, 0, sizeof *m);
    for (tok = strtok_r(line, " \n", &save); tok;
         tok = strtok_r(NULL, " \n", &save), field++) {
        if (after_dash) {
            if (k == 0)
                snprintf(m->fstype, sizeof m->fstype, "%s", tok);
            else if (k == 1)
                snprintf(m->source, sizeof m->source, "%s", tok);
            k++;
            continue;
        }
        if (field == 2 && sscanf(tok, "%u:%u", &m->major, &m->minor) != 2)
            return -1;
        if (field == 4)
            snprintf(m->mnt, sizeof m->mnt, "%s", tok);
        if (field >= 6 && strcmp(tok, "-") == 0)
            after_dash = 1;
    }
    if (!after_dash || k < 2)
        return -1;
    unescape(m->mnt);
    unescape(m->source);
    return 0;
}

typedef int (*match_fn)(const cli_mount *m, const void *arg);

/* The last matching line wins (the mount on top). */
static int find(match_fn match, const void *arg, cli_mount *out)
{
    FILE *f = fopen("/proc/self/mountinfo", "re");
    if (!f)
        return -errno;
    char *line = NULL;
    size_t cap = 0;
    int found = 0;
    cli_mount m;
    while (getline(&line, &cap, f) > 0) {
        if (parse_line(line, &m) == 0 && match(&m, arg)) {
            *out = m;
            found = 1;
        }
    }
    free(line);
    fclose(f);
    return found;
}

static int match_path(const cli_mount *m, const void *arg)
{
    return strcmp(m->mnt, arg) == 0;
}

int cli_mount_at(const char *path, cli_mount *out)
{
    return find(match_path, path, out);
}

static int match_dev(const cli_mount *m, const void *arg)
{
    const unsigned *d = arg;
    return m->major == d[0] && m->minor == d[1];
}

int cli_mount_by_dev(unsigned major, unsigned minor, cli_mount *out)
{
    unsigned d[2] = {major, minor};
    return find(match_dev, d, out);
}

int cli_mount_is_meshfs(const cli_mount *m)
{
    return strcmp(m->fstype, "fuse.meshfs") == 0;
}

static int match_store(const cli_mount *m, const void *arg)
{
    return cli_mount_is_meshfs(m) && strcmp(m->source, arg) == 0;
}

int cli_mount_by_store(const char *store, cli_mount *out)
{
    return find(match_store, store, out);
}

int cli_mount_find(const char *arg, cli_mount *m, char *rel, size_t cap)
{
    char path[PATH_MAX], probe[PATH_MAX], real[PATH_MAX];
    if (cli_abspath(arg, path, sizeof path) < 0)
        return cli_fail("path too long: %s", arg);
    /* the nearest existing ancestor, resolved; the rest as given */
    snprintf(probe, sizeof probe, "%s", path);
    const char *tail = "";
    struct stat st;
    while (lstat(probe, &st) < 0) {
        char *slash = strrchr(probe, '/');
        if (!slash || slash == probe) {
            snprintf(probe, sizeof probe, "/");
            break;
        }
        *slash = '\0';
        tail = path + (slash - probe);
    }
    if (!realpath(probe, real))
        return cli_fail("cannot resolve %s: %s", probe, strerror(errno));
    char full[PATH_MAX];
    size_t rl = strcmp(real, "/") ? strlen(real) : 0, tl = strlen(tail);
    if (rl + tl + 2 > sizeof full)
        return cli_fail("path too long: %s", arg);
    memcpy(full, real, rl);
    memcpy(full + rl, tail, tl + 1);
    if (!full[0])
        memcpy(full, "/", 2);
    memcpy(path, full, strlen(full) + 1);
    if (lstat(real, &st) < 0 ||
        cli_mount_by_dev(major(st.st_dev), minor(st.st_dev), m) != 1 ||
        !cli_mount_is_meshfs(m))
        return cli_fail("not in a meshfs mount: %s", path);
    size_t n = strlen(m->mnt);
    const char *r = path + n;
    if (strncmp(path, m->mnt, n) != 0 || (*r && *r != '/'))
        return cli_fail("not in a meshfs mount: %s", path);
    snprintf(rel, cap, "%s", *r ? r : "/");
    return 0;
}

int cli_unmount(const char *mnt, int lazy, char *err, size_t errcap)
{
    if (geteuid() == 0) {
        if (umount2(mnt, lazy ? MNT_DETACH : 0) == 0)
            return 0;
        int e = errno;
        snprintf(err, errcap, "cannot unmount %s: %s", mnt,
                 e == EBUSY ? "mount point is busy (files open or a process "
                              "works in it)"
                            : strerror(e));
        return -e;
    }
    /* unprivileged: fusermount3 (setuid) */
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return -errno;
    pid_t pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return -errno;
    }
    if (pid == 0) {
        dup2(pipefd[1], 2);
        dup2(pipefd[1], 1);
        if (lazy)
            execlp("fusermount3", "fusermount3", "-u", "-z", "--", mnt,
                   (char *)NULL);
        else
            execlp("fusermount3", "fusermount3", "-u", "--", mnt, (char *)NULL);
        _exit(127);
    }
    close(pipefd[1]);
    char buf[512];
    size_t len = 0;
    ssize_t n;
    while ((n = read(pipefd[0], buf + len, sizeof buf - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    close(pipefd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
        return 0;
    char *nl = strchr(buf, '\n');
    if (nl)
        *nl = '\0';
    snprintf(err, errcap, "cannot unmount %s: %s", mnt,
             buf[0] ? buf : "fusermount3 failed");
    return strstr(buf, "busy") ? -EBUSY : -EPERM;
}

int cli_mount_dead(const char *mnt)
{
    struct statfs sf;
    cli_mount m;
    char held[PATH_MAX];
    /* a mount whose daemon crashed and whose holder waits for the next
     * (fs/holder.c): statfs would wait for that daemon too */
    if (cli_mount_at(mnt, &m) == 1 && cli_mount_is_meshfs(&m) &&
        mfs_fs_holder_query(m.source, held, sizeof held) == MFS_HOLD_WAITING)
        return 1;
    /* ECONNABORTED: the request was queued while the killed daemon's last
     * threads still held /dev/fuse, and the kernel aborted it when they
     * let go (a restart right after kill -9 met this: "already mounted") */
    return statfs(mnt, &sf) < 0 && (errno == ENOTCONN || errno == ECONNABORTED);
}
