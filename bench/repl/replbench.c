/*
 * replbench.c - the timed parts of bench/repl/run.sh: writers on one
 * replica and pollers on another, so that a propagation time is measured
 * from the writer's close() to the moment a plain open()+read() on the
 * other replica returns the expected bytes, with no process start-up and no
 * inotify (FUSE mounts do not deliver it for remote changes) in between.
 *
 * Timestamps are CLOCK_MONOTONIC seconds, which is one clock for every
 * process on the machine, so the script subtracts a writer's time from a
 * poller's.
 *
 * It must never accept content loosely: a file only counts as arrived when
 * every byte equals what the writer wrote (deterministic data derived from
 * a seed and the file's name), so a replica that shows a file early, short
 * or stale cannot look fast.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../bench.h"

#define MIB (1024 * 1024)

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* splitmix64: fast, and its output does not compress (zlib gains nothing) */
static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static uint64_t seed_of(uint64_t seed, const char *name)
{
    uint64_t h = 1469598103934665603ULL ^ seed;
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    return h;
}

/* Fill buf with the stream of state *s (len is a multiple of 8 or the end) */
static void fill(unsigned char *buf, size_t len, uint64_t *s)
{
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v = mix(s);
        memcpy(buf + i, &v, 8);
    }
    if (i < len) {
        uint64_t v = mix(s);
        memcpy(buf + i, &v, len - i);
    }
}

static void write_all(int fd, const void *buf, size_t len, const char *what)
{
    const char *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("write %s: %s", what, n < 0 ? strerror(errno) : "0 bytes");
        p += n;
        len -= (size_t)n;
    }
}

/* Write path atomically from the caller's view: O_TRUNC, write, close. */
static void put_file(const char *path, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die("create %s: %s", path, strerror(errno));
    write_all(fd, buf, len, path);
    if (close(fd) < 0)
        die("close %s: %s", path, strerror(errno));
}

/* What a poll saw: the expected bytes, or why not (for the sample log). */
enum seen { SEEN_OK, SEEN_ABSENT, SEEN_OPEN_ERR, SEEN_READ_ERR, SEEN_SIZE, SEEN_BYTES };
static const char *const seen_name[] = {"ok", "absent", "open-error", "read-error",
                                        "other-size", "other-bytes"};

/* Does path hold exactly want[0..len)? Never fails; says what it saw. */
static enum seen poll_content(const char *path, const unsigned char *want,
                              size_t len, unsigned char *scratch, size_t cap)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return errno == ENOENT ? SEEN_ABSENT : SEEN_OPEN_ERR;
    size_t got = 0;
    enum seen r = SEEN_OK;
    for (;;) {
        ssize_t n = read(fd, scratch + got, cap - got);
        if (n < 0) {
            r = SEEN_READ_ERR;
            break;
        }
        if (n == 0)
            break;
        got += (size_t)n;
        if (got > len || got == cap) {
            r = SEEN_SIZE;
            break;
        }
    }
    close(fd);
    if (r == SEEN_OK && got != len)
        r = SEEN_SIZE;
    if (r == SEEN_OK && memcmp(scratch, want, len) != 0)
        r = SEEN_BYTES;
    return r;
}

static int has_content(const char *path, const unsigned char *want, size_t len,
                       unsigned char *scratch, size_t cap)
{
    return poll_content(path, want, len, scratch, cap) == SEEN_OK;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* nearest-rank percentile of sorted v[0..n) */
static double pct(const double *v, int n, double p)
{
    int k = (int)((p / 100.0) * n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return v[k - 1];
}

/*
 * latency WDIR RDIR N POLL_US TIMEOUT_S SEED LOG: N samples; even ones
 * create a new file nNNNN, odd ones rewrite the file edit (which must exist
 * on both sides already) in WDIR, and RDIR is the same directory on the
 * other replica. After close() on WDIR, poll RDIR every POLL_US
 * with open+read until the content matches. A random 10-50 ms pause
 * separates samples, so they do not lock to a peer's timer phase. Writes
 * "i kind seconds last start" per sample to LOG (-1 = timed out; last =
 * what the last unsuccessful poll saw: absent, other-size, other-bytes,
 * ..., or - when the first poll succeeded; start = the monotonic clock at
 * close(), as `replbench now` prints it) and prints
 * "n timeouts p50 p99 max" (seconds; a timeout counts as infinite).
 */
static int cmd_latency(char **a)
{
    const char *wdir = a[0], *rdir = a[1];
    int n = atoi(a[2]);
    long poll_us = atol(a[3]);
    double timeout = atof(a[4]);
    uint64_t s = strtoull(a[5], NULL, 10);
    FILE *log = fopen(a[6], "w");
    if (!log)
        die("open %s: %s", a[6], strerror(errno));
    if (n < 1)
        die("latency: N must be >= 1");
    double *v = calloc((size_t)n, sizeof *v);
    unsigned char want[160], scratch[4096];
    char wpath[4096], rpath[4096];
    int timeouts = 0, streak = 0, done = 0;
    for (int i = 0; i < n; i++) {
        const char *kind = (i % 2) ? "edit" : "new";
        if (i % 2) {
            snprintf(wpath, sizeof wpath, "%s/edit", wdir);
            snprintf(rpath, sizeof rpath, "%s/edit", rdir);
        } else {
            snprintf(wpath, sizeof wpath, "%s/n%04d", wdir, i);
            snprintf(rpath, sizeof rpath, "%s/n%04d", rdir, i);
        }
        /* 100-160 bytes: a header that names the sample, then noise */
        size_t len = 100 + mix(&s) % 61;
        fill(want, len, &s);
        int h = snprintf((char *)want, len, "sample %d %s ", i, kind);
        want[h] = '|';
        sleep_us(10000 + (long)(mix(&s) % 40000));
        put_file(wpath, want, len);
        double t0 = now(), t;
        enum seen last = SEEN_OK, r;
        for (;;) {
            r = poll_content(rpath, want, len, scratch, sizeof scratch);
            if (r == SEEN_OK) {
                t = now() - t0;
                break;
            }
            last = r;
            if (now() - t0 > timeout) {
                t = -1;
                break;
            }
            sleep_us(poll_us);
        }
        fprintf(log, "%d %s %.6f %s %.6f\n", i, kind, t,
                last == SEEN_OK ? "-" : seen_name[last], t0);
        fflush(log);
        v[i] = t < 0 ? 1e9 : t;
        done++;
        if (t < 0) {
            timeouts++;
            if (++streak >= 3) {
                fprintf(stderr, "replbench: latency: 3 timeouts in a row "
                                "(%.0f s each), stopping after %d samples\n",
                        timeout, done);
                break;
            }
        } else {
            streak = 0;
        }
    }
    fclose(log);
    qsort(v, (size_t)done, sizeof *v, cmp_double);
    printf("%d %d %.6f %.6f %.6f\n", done, timeouts, pct(v, done, 50),
           pct(v, done, 99), v[done - 1]);
    free(v);
    return 0;
}

static void small_name(char *buf, size_t cap, const char *dir, long i)
{
    int n = snprintf(buf, cap, "%s/f%05ld", dir, i);
    if (n < 0 || (size_t)n >= cap)
        die("path too long: %s/f%05ld", dir, i);
}

static void small_content(unsigned char *buf, size_t len, uint64_t seed,
                          const char *name)
{
    uint64_t s = seed_of(seed, name);
    fill(buf, len, &s);
}

/*
 * mkfiles DIR FIRST COUNT SIZE SEED: create (or rewrite) DIR/fNNNNN for
 * NNNNN in [FIRST, FIRST+COUNT) with SIZE deterministic bytes each; prints
 * "t_start t_end" (monotonic seconds).
 */
static int cmd_mkfiles(char **a)
{
    const char *dir = a[0];
    long first = atol(a[1]), count = atol(a[2]);
    size_t size = (size_t)atol(a[3]);
    uint64_t seed = strtoull(a[4], NULL, 10);
    unsigned char *buf = malloc(size ? size : 1);
    char path[4096];
    double t0 = now();
    for (long i = first; i < first + count; i++) {
        small_name(path, sizeof path, dir, i);
        small_content(buf, size, seed, strrchr(path, '/') + 1);
        put_file(path, buf, size);
    }
    printf("%.6f %.6f\n", t0, now());
    free(buf);
    return 0;
}

/*
 * waitfiles DIR COUNT SIZE SEED TIMEOUT_S: wait until DIR/f00000 ..
 * f<COUNT-1> all hold what mkfiles with SIZE and SEED writes. Each pass
 * lists DIR and reads only the listed files still missing, then pauses
 * 50 ms (a listing of 10,000 names costs a few ms; polling harder would
 * take CPU from the replicas being measured). Prints "done T_LAST" (when
 * the last file was verified) or "timeout FOUND"; exit 0 / 2.
 */
static int cmd_waitfiles(char **a)
{
    const char *dir = a[0];
    long count = atol(a[1]);
    size_t size = (size_t)atol(a[2]);
    uint64_t seed = strtoull(a[3], NULL, 10);
    double timeout = atof(a[4]), t0 = now();
    char *ok = calloc((size_t)count, 1);
    unsigned char *want = malloc(size + 1), *scratch = malloc(size + 2);
    long found = 0;
    char path[4096];
    while (found < count) {
        if (now() - t0 > timeout) {
            printf("timeout %ld\n", found);
            return 2;
        }
        DIR *d = opendir(dir);
        if (d) {
            struct dirent *e;
            while ((e = readdir(d))) {
                char *end;
                if (e->d_name[0] != 'f' || strlen(e->d_name) != 6)
                    continue;
                long i = strtol(e->d_name + 1, &end, 10);
                if (*end || i < 0 || i >= count || ok[i])
                    continue;
                snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
                small_content(want, size, seed, e->d_name);
                if (has_content(path, want, size, scratch, size + 2)) {
                    ok[i] = 1;
                    found++;
                }
            }
            closedir(d);
        }
        if (found < count)
            sleep_us(50000);
    }
    printf("done %.6f\n", now());
    free(ok);
    free(want);
    free(scratch);
    return 0;
}

/*
 * bigwrite PATH MIB SEED: write MIB MiB of incompressible data in 1 MiB
 * writes and close; prints "t_start t_close".
 */
static int cmd_bigwrite(char **a)
{
    const char *path = a[0];
    long mib = atol(a[1]);
    uint64_t s = strtoull(a[2], NULL, 10);
    unsigned char *buf = malloc(MIB);
    double t0 = now();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die("create %s: %s", path, strerror(errno));
    for (long i = 0; i < mib; i++) {
        fill(buf, MIB, &s);
        write_all(fd, buf, MIB, path);
    }
    if (close(fd) < 0)
        die("close %s: %s", path, strerror(errno));
    printf("%.6f %.6f\n", t0, now());
    free(buf);
    return 0;
}

/* 1 if the whole file at path is bigwrite's stream; 0 otherwise */
static int big_verify(const char *path, long mib, uint64_t seed,
                      unsigned char *want, unsigned char *got)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    uint64_t s = seed;
    int ok = 1;
    for (long i = 0; i < mib && ok; i++) {
        size_t have = 0;
        while (have < MIB) {
            ssize_t n = read(fd, got + have, MIB - have);
            if (n <= 0) {
                ok = 0;
                break;
            }
            have += (size_t)n;
        }
        fill(want, MIB, &s);
        if (ok && memcmp(want, got, MIB) != 0)
            ok = 0;
    }
    if (ok && read(fd, got, 1) != 0)
        ok = 0;
    close(fd);
    return ok;
}

/*
 * bigwait PATH MIB SEED TIMEOUT_S: poll stat(PATH) every 10 ms until it
 * has the full size, then read it all and compare with bigwrite's stream;
 * on a mismatch (an older or partial version) start over. (10 ms is
 * nothing against a transfer of seconds, and polling harder takes CPU from
 * the replicas.) Prints "done T_DONE
 * VERIFY_S" (T_DONE = end of the verifying read) or "timeout SIZE_SEEN";
 * exit 0 / 2.
 */
static int cmd_bigwait(char **a)
{
    const char *path = a[0];
    long mib = atol(a[1]);
    uint64_t seed = strtoull(a[2], NULL, 10);
    double timeout = atof(a[3]), t0 = now();
    unsigned char *want = malloc(MIB), *got = malloc(MIB);
    off_t full = (off_t)mib * MIB, seen = 0;
    for (;;) {
        struct stat st;
        if (now() - t0 > timeout) {
            printf("timeout %jd\n", (intmax_t)seen);
            return 2;
        }
        int have = stat(path, &st) == 0;
        if (have && st.st_size > seen)
            seen = st.st_size;
        if (have && st.st_size == full) {
            double v0 = now();
            if (big_verify(path, mib, seed, want, got)) {
                double t = now();
                printf("done %.6f %.6f\n", t, t - v0);
                break;
            }
        }
        sleep_us(10000);
    }
    free(want);
    free(got);
    return 0;
}

/*
 * changes DIR SIDE COUNT SEED: COUNT changes for the partition test: the
 * first half rewrites DIR/base/fNNNNN of this side's half of the shared
 * base set (side 0: the first COUNT/2, side 1: the next), the second half
 * creates DIR/sSIDE/fNNNNN. Prints "t_start t_end".
 */
static int cmd_changes(char **a)
{
    const char *dir = a[0];
    int side = atoi(a[1]);
    long count = atol(a[2]), half = count / 2;
    uint64_t seed = strtoull(a[3], NULL, 10);
    unsigned char buf[1024];
    char sub[4096], path[4096];
    double t0 = now();
    snprintf(sub, sizeof sub, "%s/base", dir);
    for (long i = side * half; i < (side + 1) * half; i++) {
        small_name(path, sizeof path, sub, i);
        small_content(buf, sizeof buf, seed ^ (uint64_t)(side + 1),
                      strrchr(path, '/') + 1);
        put_file(path, buf, sizeof buf);
    }
    snprintf(sub, sizeof sub, "%s/s%d", dir, side);
    if (mkdir(sub, 0755) < 0 && errno != EEXIST)
        die("mkdir %s: %s", sub, strerror(errno));
    for (long i = 0; i < count - half; i++) {
        small_name(path, sizeof path, sub, i);
        small_content(buf, sizeof buf, seed, strrchr(path, '/') + 1);
        put_file(path, buf, sizeof buf);
    }
    printf("%.6f %.6f\n", t0, now());
    return 0;
}

static size_t root_len;

/* one line per entry: type, mode bits, size, FNV-1a of content, path */
static int manifest_entry(const char *path, const struct stat *st, int type,
                          struct FTW *f)
{
    const char *rel = path + root_len;
    if (f->level == 0)
        return 0;
    if (*rel == '/')
        rel++;
    /* Syncthing's own folder marker and metadata, never part of the tree */
    if (f->level == 1 && (strcmp(rel, ".stfolder") == 0 ||
                          strcmp(rel, ".stversions") == 0 ||
                          strcmp(rel, ".stignore") == 0))
        return type == FTW_D ? FTW_SKIP_SUBTREE : 0;
    uint64_t h = 1469598103934665603ULL;
    char t = '?';
    if (type == FTW_F && S_ISREG(st->st_mode)) {
        t = 'f';
        int fd = open(path, O_RDONLY);
        if (fd < 0) {
            printf("f ? ? unreadable %s\n", rel);
            return 0;
        }
        unsigned char buf[65536];
        ssize_t n;
        while ((n = read(fd, buf, sizeof buf)) > 0)
            for (ssize_t i = 0; i < n; i++)
                h = (h ^ buf[i]) * 1099511628211ULL;
        close(fd);
    } else if (type == FTW_D) {
        t = 'd';
    } else if (type == FTW_SL) {
        t = 'l';
    }
    printf("%c %o %jd %016" PRIx64 " %s\n", t, (unsigned)(st->st_mode & 0777),
           t == 'd' ? (intmax_t)0 : (intmax_t)st->st_size, h, rel);
    return 0;
}

/* manifest DIR: the tree as text lines (unsorted; the script sorts) */
static int cmd_manifest(char **a)
{
    root_len = strlen(a[0]);
    if (nftw(a[0], manifest_entry, 32, FTW_PHYS | FTW_ACTIONRETVAL) < 0)
        die("walk %s: %s", a[0], strerror(errno));
    return 0;
}

/* now: the monotonic clock, for the script's own timestamps */
static int cmd_now(char **a)
{
    (void)a;
    printf("%.6f\n", now());
    return 0;
}

static const struct {
    const char *name;
    int argc;
    int (*fn)(char **);
    const char *usage;
} cmds[] = {
    {"latency", 7, cmd_latency, "WDIR RDIR N POLL_US TIMEOUT_S SEED LOG"},
    {"mkfiles", 5, cmd_mkfiles, "DIR FIRST COUNT SIZE SEED"},
    {"waitfiles", 5, cmd_waitfiles, "DIR COUNT SIZE SEED TIMEOUT_S"},
    {"bigwrite", 3, cmd_bigwrite, "PATH MIB SEED"},
    {"bigwait", 4, cmd_bigwait, "PATH MIB SEED TIMEOUT_S"},
    {"changes", 4, cmd_changes, "DIR SIDE COUNT SEED"},
    {"manifest", 1, cmd_manifest, "DIR"},
    {"now", 0, cmd_now, ""},
};

int main(int argc, char **argv)
{
    for (size_t i = 0; argc >= 2 && i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(argv[1], cmds[i].name) == 0) {
            if (argc - 2 != cmds[i].argc)
                die("usage: replbench %s %s", cmds[i].name, cmds[i].usage);
            return cmds[i].fn(argv + 2);
        }
    fprintf(stderr, "usage: replbench COMMAND ARGS...\n");
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        fprintf(stderr, "  %s %s\n", cmds[i].name, cmds[i].usage);
    return 2;
}
