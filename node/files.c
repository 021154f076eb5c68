/*
 * files.c - the node's small files in the store directory: STORE/peers
 * (seed addresses, read here; rewritten by mesh.c), STORE/listen, STORE/epoch,
 * new files written whole (STORE/rejoin, the join's address), and a new
 * store with its mesh key (`meshfs init`, `join`, `mount` on an empty
 * directory), and STORE/acks, the write concern a mount remembers
 * (daemon.h).
 */
#include "internal.h"

#include "daemon.h"

#include "mesh.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int mfs_write_new_file(const char *path, const char *fmt, ...)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    va_list ap;
    va_start(ap, fmt);
    int ok = vdprintf(fd, fmt, ap) >= 0 && fsync(fd) == 0;
    va_end(ap);
    int e = errno;
    close(fd);
    if (!ok) {
        unlink(path);
        return -e;
    }
    return 0;
}

/* Reads "HOST:PORT" lines of STORE/peers into seeds (strdup'd). */
size_t node_read_peers(const char *dir, char **seeds, size_t n, size_t cap)
{
    char path[PATH_MAX + 16], line[256];
    snprintf(path, sizeof path, "%s/%s", dir, NODE_PEERS_FILE);
    FILE *f = fopen(path, "re");
    if (!f)
        return n;
    while (n < cap && fgets(line, sizeof line, f)) {
        line[strcspn(line, " \t\r\n")] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        int dup = 0;
        for (size_t i = 0; i < n; i++)
            dup |= strcmp(seeds[i], line) == 0;
        if (!dup && (seeds[n] = strdup(line)) != NULL)
            n++;
    }
    fclose(f);
    return n;
}

/* A boot epoch larger than every earlier one of this store, even when the
 * wall clock stepped back since (peers drop a node's datagrams of an
 * older epoch than they know): max(now, last + 1), kept in STORE/epoch. */
uint64_t node_next_epoch(const char *dir, uint64_t wall_us)
{
    char path[PATH_MAX + 16], tmp[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/epoch", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    unsigned long long last = 0;
    FILE *f = fopen(path, "re");
    if (f) {
        if (fscanf(f, "%llu", &last) != 1)
            last = 0;
        fclose(f);
    }
    uint64_t now = wall_us;
    uint64_t e = now > last ? now : (uint64_t)last + 1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        int ok =
            dprintf(fd, "%llu\n", (unsigned long long)e) > 0 && fsync(fd) == 0;
        close(fd);
        if (!ok || rename(tmp, path) != 0)
            unlink(tmp);
    }
    return e;
}

/* ---- STORE/acks ---- */

void mfs_daemon_acks_default(mfs_acks_config *c)
{
    memset(c, 0, sizeof *c);
    c->timeout_ms = MFS_ACKS_TIMEOUT_DEFAULT_MS;
}

/* The same bounds as the command line's (cli/main.c): a hand-edited file
 * must not give what a flag could not. */
static int acks_valid(unsigned long long n, unsigned long long ms,
                      unsigned long long wait, unsigned long long on_close)
{
    return n <= MFS_ACKS_MAX && ms >= 1 &&
           ms <= MFS_DAEMON_ACKS_TIMEOUT_MAX_MS && wait <= 1 && on_close <= 1;
}

int mfs_daemon_acks_read(const char *store_dir, mfs_acks_config *c)
{
    char path[PATH_MAX + 16], line[256];
    unsigned long long n, ms, wait, on_close;
    int end = 0;
    mfs_daemon_acks_default(c);
    snprintf(path, sizeof path, "%s/%s", store_dir, MFS_ACKS_FILE);
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    int got = fgets(line, sizeof line, f) != NULL;
    int more = got && fgetc(f) != EOF; /* one line only */
    fclose(f);
    if (!got || more ||
        sscanf(line, "acks %llu timeout_ms %llu wait %llu on_close %llu%n", &n,
               &ms, &wait, &on_close, &end) != 4 ||
        strcmp(line + end, "\n") != 0 || !acks_valid(n, ms, wait, on_close))
        return -EINVAL;
    c->n = (unsigned)n;
    c->timeout_ms = (uint32_t)ms;
    c->wait = (int)wait;
    c->on_close = (int)on_close;
    return 0;
}

int mfs_write_file_replace(const char *path, const char *fmt, ...)
{
    char tmp[PATH_MAX + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    va_list ap;
    va_start(ap, fmt);
    int ok = vdprintf(fd, fmt, ap) > 0 && fsync(fd) == 0;
    va_end(ap);
    int e = errno;
    close(fd);
    if (ok && rename(tmp, path) == 0)
        return 0;
    e = ok ? errno : e;
    unlink(tmp);
    return -e;
}

int mfs_daemon_acks_write(const char *store_dir, const mfs_acks_config *c)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/%s", store_dir, MFS_ACKS_FILE);
    return mfs_write_file_replace(
        path, "acks %u timeout_ms %" PRIu32 " wait %d on_close %d\n", c->n,
        c->timeout_ms, c->wait ? 1 : 0, c->on_close ? 1 : 0);
}

int node_write_listen(const char *dir, const char *addr)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/%s", dir, NODE_LISTEN_FILE);
    FILE *f = fopen(path, "we");
    if (!f)
        return -errno;
    fprintf(f, "%s\n", addr);
    return fclose(f) == 0 ? 0 : -errno;
}

void node_read_listen(const char *dir, char *out, size_t cap)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/%s", dir, NODE_LISTEN_FILE);
    out[0] = '\0';
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    if (fgets(out, (int)cap, f))
        out[strcspn(out, " \t\r\n")] = '\0';
    fclose(f);
}

int mfs_node_dir_empty(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 1 : -errno;
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            empty = 0;
            break;
        }
    }
    closedir(d);
    return empty;
}

int mfs_node_mkdirs(const char *dir, mode_t mode)
{
    char tmp[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s", dir) >= (int)sizeof tmp)
        return -ENAMETOOLONG;
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, mode) < 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    if (mkdir(tmp, mode) < 0 && errno != EEXIST)
        return -errno;
    return 0;
}

int mfs_node_store_create(const char *dir, int new_mesh, mfs_store **out)
{
    mfs_store_config cfg;
    int r = mfs_node_dir_empty(dir);
    if (r < 0)
        return r;
    if (r == 0)
        return -ENOTEMPTY;
    r = mfs_node_mkdirs(dir, 0700);
    if (r < 0)
        return r;
    mfs_store_config_default(&cfg);
    cfg.new_mesh = new_mesh;
    cfg.root_uid = (uint32_t)getuid();
    cfg.root_gid = (uint32_t)getgid();
    cfg.root_mode = 0755;
    r = mfs_store_open(out, dir, &cfg, MFS_STORE_CREATE);
    if (r < 0)
        return r;
    if (new_mesh) {
        int k = mfs_mesh_key_create(dir);
        if (k == 0 || k == -EEXIST)
            k = mfs_node_ident_found(dir, *out); /* per-node keys */
        if (k < 0 && k != -EEXIST) {
            mfs_store_close(*out);
            *out = NULL;
            return k;
        }
    }
    return 0;
}
