/*
 * files.c - the node's small files in the store directory: STORE/peers
 * (seed addresses, read here; rewritten by mesh.c), STORE/listen, STORE/epoch,
 * and new files written whole (STORE/rejoin, the join's address).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
uint64_t node_next_epoch(const char *dir)
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
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000;
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

