/*
 * fsbench.c - the timed inner loops of bench/fs/run.sh: each subcommand does
 * one workload with plain syscalls and prints its wall time in seconds, so
 * the comparison measures the filesystem, not process start-up.
 *
 * It must never check results loosely: a short write, a missing entry or an
 * error aborts with exit 1 and a message, so a broken filesystem cannot look
 * fast.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../bench.h"

static uint64_t rng(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

static void name(char *buf, size_t cap, const char *dir, long i)
{
    snprintf(buf, cap, "%s/f%06ld", dir, i);
}

static void write_all(int fd, const char *buf, size_t len, const char *what)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0)
            die("write %s: %s", what, strerror(errno));
        buf += n;
        len -= (size_t)n;
    }
}

/* create DIR N SIZE: N files of SIZE bytes each */
static double b_create(const char *dir, long n, long size)
{
    char p[4096], *buf = calloc(1, (size_t)size + 1);
    memset(buf, 'x', (size_t)size);
    double t = now();
    for (long i = 0; i < n; i++) {
        name(p, sizeof p, dir, i);
        int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0)
            die("create %s: %s", p, strerror(errno));
        write_all(fd, buf, (size_t)size, p);
        if (close(fd) < 0)
            die("close %s: %s", p, strerror(errno));
    }
    t = now() - t;
    free(buf);
    return t;
}

/* small4k DIR N: N files of 4 KiB each (open O_CREAT|O_EXCL, one 4 KiB
 * write, close). The bytes are pseudo-random with the file's index in the
 * first 8, so no two files are alike: neither dedup nor compression helps. */
static double b_small4k(const char *dir, long n)
{
    char p[4096], buf[4096];
    uint64_t s = 0x9E3779B97F4A7C15ULL;
    for (size_t k = 0; k < sizeof buf; k += 8) {
        uint64_t v = rng(&s);
        memcpy(buf + k, &v, 8);
    }
    double t = now();
    for (long i = 0; i < n; i++) {
        name(p, sizeof p, dir, i);
        memcpy(buf, &i, sizeof i);
        int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0)
            die("create %s: %s", p, strerror(errno));
        write_all(fd, buf, sizeof buf, p);
        if (close(fd) < 0)
            die("close %s: %s", p, strerror(errno));
    }
    return now() - t;
}

static double b_stat(const char *dir, long n)
{
    char p[4096];
    struct stat st;
    double t = now();
    for (long i = 0; i < n; i++) {
        name(p, sizeof p, dir, i);
        if (stat(p, &st) < 0)
            die("stat %s: %s", p, strerror(errno));
    }
    return now() - t;
}

/* list DIR REPS WANT: readdir the whole dir REPS times, WANT entries each */
static double b_list(const char *dir, long reps, long want)
{
    double t = now();
    for (long r = 0; r < reps; r++) {
        DIR *d = opendir(dir);
        if (!d)
            die("opendir %s: %s", dir, strerror(errno));
        long n = 0;
        struct dirent *e;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
                n++;
        closedir(d);
        if (n != want)
            die("readdir %s: %ld entries, want %ld", dir, n, want);
    }
    return now() - t;
}

static double b_unlink(const char *dir, long n)
{
    char p[4096];
    double t = now();
    for (long i = 0; i < n; i++) {
        name(p, sizeof p, dir, i);
        if (unlink(p) < 0)
            die("unlink %s: %s", p, strerror(errno));
    }
    return now() - t;
}

/* seqwrite FILE MIB: 1 MiB writes, then fsync, then close */
static double b_seqwrite(const char *path, long mib)
{
    char *buf = malloc(1 << 20);
    uint64_t s = 88172645463325252ULL;
    for (size_t i = 0; i < (1u << 20); i += 8) {
        uint64_t v = rng(&s);
        memcpy(buf + i, &v, 8);
    }
    double t = now();
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die("open %s: %s", path, strerror(errno));
    for (long i = 0; i < mib; i++) {
        /* no two 4 KiB pieces alike, so no chunking (meshfs's 64 KiB blocks,
         * or content-defined chunks) can dedup any of it */
        for (long k = 0; k < (1 << 20); k += 4096) {
            long stamp = (i << 20) | k;
            memcpy(buf + k, &stamp, sizeof stamp);
        }
        write_all(fd, buf, 1 << 20, path);
    }
    if (fsync(fd) < 0)
        die("fsync %s: %s", path, strerror(errno));
    if (close(fd) < 0)
        die("close %s: %s", path, strerror(errno));
    t = now() - t;
    free(buf);
    return t;
}

static double b_seqread(const char *path, long want_mib)
{
    char *buf = malloc(1 << 20);
    double t = now();
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        die("open %s: %s", path, strerror(errno));
    long long total = 0;
    for (;;) {
        ssize_t n = read(fd, buf, 1 << 20);
        if (n < 0)
            die("read %s: %s", path, strerror(errno));
        if (n == 0)
            break;
        total += n;
    }
    close(fd);
    t = now() - t;
    if (total != (long long)want_mib << 20)
        die("read %s: %lld bytes, want %ld MiB", path, total, want_mib);
    free(buf);
    return t;
}

/* 4 KiB of pseudo-random bytes */
static void fill_page(char buf[4096], uint64_t *s)
{
    for (int k = 0; k < 4096; k += 8) {
        uint64_t v = rng(s);
        memcpy(buf + k, &v, 8);
    }
}

/* opens an existing, non-empty file for writing; *pages = its 4 KiB pages */
static int open_pages(const char *path, long *pages)
{
    struct stat st;
    int fd = open(path, O_WRONLY);
    if (fd < 0 || fstat(fd, &st) < 0)
        die("open %s: %s", path, strerror(errno));
    *pages = (long)(st.st_size / 4096);
    if (*pages < 1)
        die("%s is empty", path);
    return fd;
}

/* randwrite FILE COUNT: 4 KiB writes at random aligned offsets, fsync */
static double b_randwrite(const char *path, long count)
{
    char buf[4096];
    uint64_t s = 0x2545F4914F6CDD1DULL;
    double t = now();
    long blocks;
    int fd = open_pages(path, &blocks);
    for (long i = 0; i < count; i++) {
        fill_page(buf, &s);
        off_t off = (off_t)(rng(&s) % (uint64_t)blocks) * 4096;
        if (pwrite(fd, buf, sizeof buf, off) != (ssize_t)sizeof buf)
            die("pwrite %s: %s", path, strerror(errno));
    }
    if (fsync(fd) < 0)
        die("fsync %s: %s", path, strerror(errno));
    close(fd);
    return now() - t;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* prints the median and p99 of lat[0..n) in microseconds and total (s);
 * frees lat */
static void report_lat(double *lat, long n, double total)
{
    qsort(lat, (size_t)n, sizeof *lat, cmp_d);
    printf("%.1f %.1f %.6f\n", lat[n / 2] * 1e6, lat[(n * 99) / 100] * 1e6,
           total);
    free(lat);
}

/* bigfsync FILE N: N times, a 4 KiB write at a random aligned offset of an
 * existing (large) file + fsync, as a database does; prints median and p99
 * in microseconds and the total time. A store whose per-fsync cost grows
 * with the file's size shows here, not in fsynclat (a small file). */
static void b_bigfsync(const char *path, long n)
{
    char buf[4096];
    uint64_t s = 0x9E3779B97F4A7C15ULL;
    double *lat = calloc((size_t)n, sizeof *lat);
    long blocks;
    int fd = open_pages(path, &blocks);
    double t0 = now();
    for (long i = 0; i < n; i++) {
        fill_page(buf, &s);
        off_t off = (off_t)(rng(&s) % (uint64_t)blocks) * 4096;
        double t = now();
        if (pwrite(fd, buf, sizeof buf, off) != (ssize_t)sizeof buf)
            die("pwrite %s: %s", path, strerror(errno));
        if (fsync(fd) < 0)
            die("fsync %s: %s", path, strerror(errno));
        lat[i] = now() - t;
    }
    report_lat(lat, n, now() - t0);
    close(fd);
}

/* fsynclat FILE N: append 4 KiB + fsync, N times; prints median and p99 in
 * microseconds and the total time */
static void b_fsynclat(const char *path, long n)
{
    char buf[4096];
    memset(buf, 'f', sizeof buf);
    double *lat = calloc((size_t)n, sizeof *lat);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    if (fd < 0)
        die("open %s: %s", path, strerror(errno));
    double t0 = now();
    for (long i = 0; i < n; i++) {
        double t = now();
        write_all(fd, buf, sizeof buf, path);
        if (fsync(fd) < 0)
            die("fsync %s: %s", path, strerror(errno));
        lat[i] = now() - t;
    }
    report_lat(lat, n, now() - t0);
    close(fd);
}

/* smallfsync DIR N: N new files, each created, written 4 KiB, fsync'd and
 * closed (bench/acks: the write concern's small-file workload); prints
 * the fsync's median and p99 in microseconds and the total time */
static void b_smallfsync(const char *dir, long n)
{
    char buf[4096], p[4200];
    memset(buf, 's', sizeof buf);
    double *lat = calloc((size_t)n, sizeof *lat);
    double t0 = now();
    for (long i = 0; i < n; i++) {
        snprintf(p, sizeof p, "%s/f%ld", dir, i);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0)
            die("open %s: %s", p, strerror(errno));
        write_all(fd, buf, sizeof buf, p);
        double t = now();
        if (fsync(fd) < 0)
            die("fsync %s: %s", p, strerror(errno));
        lat[i] = now() - t;
        close(fd);
    }
    report_lat(lat, n, now() - t0);
}

/* mkfiles DIR N PERDIR: N empty files in subdirectories of PERDIR files */
static double b_mkfiles(const char *dir, long n, long perdir)
{
    char d[4096], p[4200];
    double t = now();
    for (long i = 0; i < n; i++) {
        snprintf(d, sizeof d, "%s/d%04ld", dir, i / perdir);
        if (i % perdir == 0 && mkdir(d, 0755) < 0)
            die("mkdir %s: %s", d, strerror(errno));
        snprintf(p, sizeof p, "%s/f%07ld", d, i);
        int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0)
            die("create %s: %s", p, strerror(errno));
        close(fd);
    }
    return now() - t;
}

/* warm MIB: touches MIB of fresh memory and frees it. In a virtual
 * machine the memory a run frees (drop_caches, a removed store) may go
 * back to the host, and the next run that takes it pays the host's page
 * faults: the last ~128 MiB of a 1 GiB write took 3x as long as the rest,
 * by a varying amount each run (docs/BENCH-chunks.md). Run before a timed
 * workload, this makes the guest take that memory back first. */
static void b_warm(long mib)
{
    size_t n = (size_t)mib << 20;
    char *p = malloc(n);
    if (!p)
        die("warm: %ld MiB: out of memory", mib);
    memset(p, 1, n);
    __asm__ volatile("" : : "r"(p) : "memory"); /* (the stores stay) */
    free(p);
}

int main(int argc, char **argv)
{
    const char *c = argc > 1 ? argv[1] : "";
    if (!strcmp(c, "create") && argc == 5)
        printf("%.6f\n", b_create(argv[2], atol(argv[3]), atol(argv[4])));
    else if (!strcmp(c, "small4k") && argc == 4)
        printf("%.6f\n", b_small4k(argv[2], atol(argv[3])));
    else if (!strcmp(c, "stat") && argc == 4)
        printf("%.6f\n", b_stat(argv[2], atol(argv[3])));
    else if (!strcmp(c, "list") && argc == 5)
        printf("%.6f\n", b_list(argv[2], atol(argv[3]), atol(argv[4])));
    else if (!strcmp(c, "unlink") && argc == 4)
        printf("%.6f\n", b_unlink(argv[2], atol(argv[3])));
    else if (!strcmp(c, "seqwrite") && argc == 4)
        printf("%.6f\n", b_seqwrite(argv[2], atol(argv[3])));
    else if (!strcmp(c, "seqread") && argc == 4)
        printf("%.6f\n", b_seqread(argv[2], atol(argv[3])));
    else if (!strcmp(c, "randwrite") && argc == 4)
        printf("%.6f\n", b_randwrite(argv[2], atol(argv[3])));
    else if (!strcmp(c, "fsynclat") && argc == 4)
        b_fsynclat(argv[2], atol(argv[3]));
    else if (!strcmp(c, "bigfsync") && argc == 4)
        b_bigfsync(argv[2], atol(argv[3]));
    else if (!strcmp(c, "smallfsync") && argc == 4)
        b_smallfsync(argv[2], atol(argv[3]));
    else if (!strcmp(c, "mkfiles") && argc == 5)
        printf("%.6f\n", b_mkfiles(argv[2], atol(argv[3]), atol(argv[4])));
    else if (!strcmp(c, "warm") && argc == 3)
        b_warm(atol(argv[2]));
    else {
        fprintf(stderr, "usage: fsbench create DIR N SIZE | small4k DIR N | "
                        "stat DIR N |\n"
                        "       list DIR REPS WANT | unlink DIR N |\n"
                        "       seqwrite FILE MIB | seqread FILE MIB | "
                        "randwrite FILE COUNT |\n"
                        "       fsynclat FILE N | bigfsync FILE N | "
                        "smallfsync DIR N |\n"
                        "       mkfiles DIR N PERDIR | warm MIB\n");
        return 2;
    }
    return 0;
}
