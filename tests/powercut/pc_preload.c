/*
 * pc_preload.c - LD_PRELOAD shim for the power-cut test: it records every
 * change made to the watched files of the store directory, $PC_DIR/data.mdb
 * and $PC_DIR/intent.log (enum pc_file), in the log $PC_LOG (format in
 * pc_log.h), each record naming its file, so that pc_check can later
 * rebuild what a disk may hold after a power cut at any point of the run.
 *
 * Every call passes through to the real file first (LMDB reads its pages
 * back through mmap, so the writes must land); the record is appended after
 * the call returned, under one mutex held across the call, so the log's
 * order is the order the kernel saw. Calls on other descriptors take the
 * fast path: straight to libc, no lock. It catches writes (write, writev,
 * pwrite, pwrite64, pwritev, pwritev2 and their 64 names; fds opened with
 * O_SYNC/O_DSYNC mark their writes as durable on return), syncs (fsync,
 * fdatasync and sync_file_range with WRITE|WAIT_AFTER for the file of the
 * fd, msync(MS_SYNC) for the file mapped there, syncfs and sync for every
 * watched file open at the time: one record each), ftruncate, and follows
 * the fd through dup/dup2/dup3/fcntl(F_DUPFD). fallocate that only
 * reserves blocks (the store's preallocation) changes no byte and is not
 * logged. Calls it cannot model (a writable shared mapping, a fallocate
 * that punches or grows, copy_file_range onto the file) are logged as
 * UNMODELLED so the checker refuses the log instead of trusting it. It
 * does not see unlink or rename; pc_check's size check at each OPEN and
 * its --final comparison catch a file changed behind its back.
 *
 * It must never change what a call does or returns, never log a record for
 * a call that failed, and never touch any other file. Without $PC_DIR and
 * $PC_LOG it is inert. Test-only code; never linked into meshfs.
 */
/* The build passes -D_FILE_OFFSET_BITS=64, which renames open to open64
 * and so on in the headers; the shim defines both names itself. (off_t is
 * 64 bits either way on the 64-bit targets it is built for.) */
#undef _FILE_OFFSET_BITS
_Static_assert(sizeof(long) == 8, "pc_preload assumes a 64-bit off_t ABI");

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/falloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "pc_log.h"

#define PC_MAX_FD 4096
#define PC_MAX_MAPS 64

/* pc.fd[] per descriptor: FD_WATCHED, FD_DSYNC, and for a watched fd its
 * file (enum pc_file) from bit FD_FILE_SHIFT up. */
enum {
    FD_WATCHED = 1 << 0,
    FD_DSYNC = 1 << 1, /* opened with O_SYNC or O_DSYNC */
    FD_FILE_SHIFT = 2,
};
_Static_assert(PC_NFILES <= 1 << (8 - FD_FILE_SHIFT),
               "a file index fits pc.fd[]'s upper bits");

typedef struct pc_map {
    char *addr;
    size_t len;    /* 0 = free slot */
    unsigned file; /* enum pc_file */
} pc_map;

/* The shim's whole state. A preload library has no context to pass down,
 * so this one static is the exception to "no mutable globals"; every field
 * below is protected by pc.lock, except those marked const after init
 * (set once under pc_once) and fd[] (read without it: see fd_flags()). */
static struct {
    pthread_mutex_t lock;
    char dir[PATH_MAX];          /* $PC_DIR; const after init */
    char rdir[PATH_MAX];         /* realpath($PC_DIR), once it exists */
    char log_path[PATH_MAX];     /* const after init */
    bool active;                 /* const after init */
    int logfd;                   /* -1 until the first record */
    unsigned char fd[PC_MAX_FD]; /* FD_* per descriptor; see fd_flags() */
    pc_map map[PC_MAX_MAPS]; /* read-only shared mappings of watched files */
    int nwatched[PC_NFILES]; /* open watched fds per file */
} pc = {.lock = PTHREAD_MUTEX_INITIALIZER, .logfd = -1};

/* ---- the real functions ------------------------------------------------ */

static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_creat)(const char *, mode_t);
static int (*real_creat64)(const char *, mode_t);
static int (*real_close)(int);
static int (*real_dup)(int);
static int (*real_dup2)(int, int);
static int (*real_dup3)(int, int, int);
static int (*real_fcntl)(int, int, ...);
static int (*real_fcntl64)(int, int, ...);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev64)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev2)(int, const struct iovec *, int, off_t, int);
static ssize_t (*real_pwritev64v2)(int, const struct iovec *, int, off_t, int);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_syncfs)(int);
static void (*real_sync)(void);
static int (*real_sync_file_range)(int, off_t, off_t, unsigned int);
static int (*real_msync)(void *, size_t, int);
static void *(*real_mmap)(void *, size_t, int, int, int, off_t);
static void *(*real_mmap64)(void *, size_t, int, int, int, off_t);
static int (*real_munmap)(void *, size_t);
static int (*real_ftruncate)(int, off_t);
static int (*real_ftruncate64)(int, off_t);
static int (*real_fallocate)(int, int, off_t, off_t);
static int (*real_fallocate64)(int, int, off_t, off_t);
static int (*real_posix_fallocate)(int, off_t, off_t);
static int (*real_posix_fallocate64)(int, off_t, off_t);
static ssize_t (*real_copy_file_range)(int, off_t *, int, off_t *, size_t,
                                       unsigned int);

static void *next_sym(const char *name)
{
    return dlsym(RTLD_NEXT, name);
}

#define RESOLVE(name) (*(void **)&real_##name = next_sym(#name))

static void die(const char *what)
{
    char msg[512];
    int n = snprintf(msg, sizeof(msg), "pc_preload: %s: %s; aborting\n", what,
                     strerror(errno));
    if (n > 0 && real_write)
        (void)!real_write(
            2, msg, (size_t)n < sizeof(msg) ? (size_t)n : sizeof(msg) - 1);
    abort();
}

static void pc_init(void)
{
    RESOLVE(open);
    RESOLVE(open64);
    RESOLVE(openat);
    RESOLVE(openat64);
    RESOLVE(creat);
    RESOLVE(creat64);
    RESOLVE(close);
    RESOLVE(dup);
    RESOLVE(dup2);
    RESOLVE(dup3);
    RESOLVE(fcntl);
    RESOLVE(fcntl64);
    RESOLVE(write);
    RESOLVE(writev);
    RESOLVE(pwrite);
    RESOLVE(pwrite64);
    RESOLVE(pwritev);
    RESOLVE(pwritev64);
    RESOLVE(pwritev2);
    RESOLVE(pwritev64v2);
    RESOLVE(fsync);
    RESOLVE(fdatasync);
    RESOLVE(syncfs);
    RESOLVE(sync);
    RESOLVE(sync_file_range);
    RESOLVE(msync);
    RESOLVE(mmap);
    RESOLVE(mmap64);
    RESOLVE(munmap);
    RESOLVE(ftruncate);
    RESOLVE(ftruncate64);
    RESOLVE(fallocate);
    RESOLVE(fallocate64);
    RESOLVE(posix_fallocate);
    RESOLVE(posix_fallocate64);
    RESOLVE(copy_file_range);
    if (!real_write || !real_open || !real_close || !real_fcntl)
        die("dlsym(RTLD_NEXT) found no libc");

    const char *dir = getenv("PC_DIR");
    const char *log = getenv("PC_LOG");
    if (!dir || !*dir || !log || !*log)
        return; /* inert */
    if (snprintf(pc.dir, sizeof(pc.dir), "%s", dir) >= (int)sizeof(pc.dir) ||
        snprintf(pc.log_path, sizeof(pc.log_path), "%s", log) >=
            (int)sizeof(pc.log_path)) {
        errno = ENAMETOOLONG;
        die("$PC_DIR or $PC_LOG");
    }
    pc.active = true;
}

static pthread_once_t pc_once = PTHREAD_ONCE_INIT;

/* Every entry point calls this first: another library's constructor may
 * call open() or write() before ours has run. */
static void pc_ready(void)
{
    pthread_once(&pc_once, pc_init);
}

__attribute__((constructor)) static void pc_ctor(void)
{
    pc_ready();
}

/* ---- the log ----------------------------------------------------------- */

static void log_bytes(const void *p, size_t n)
{
    const char *b = p;
    while (n) {
        ssize_t w = real_write(pc.logfd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("write to $PC_LOG");
        b += w;
        n -= (size_t)w;
    }
}

/* Appends one record about file (enum pc_file; 0 for a NOTE); iov (may be
 * NULL) holds the payload, `len` bytes in all. Caller holds pc.lock. */
static void log_rec(unsigned file, unsigned type, unsigned flags, uint64_t off,
                    const struct iovec *iov, int iovcnt, uint64_t len)
{
    if (pc.logfd < 0) {
        pc.logfd = real_open(pc.log_path,
                             O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        if (pc.logfd < 0)
            die("open $PC_LOG");
    }
    pc_rec r = {.magic = PC_LOG_MAGIC,
                .type = (uint16_t)type,
                .flags = PC_REC_FLAGS(file, flags),
                .off = off,
                .len = len};
    log_bytes(&r, sizeof(r));
    for (int i = 0; i < iovcnt && len; i++) {
        size_t n = iov[i].iov_len < len ? iov[i].iov_len : (size_t)len;
        log_bytes(iov[i].iov_base, n);
        len -= n;
    }
}

/* Logs an UNMODELLED record for file; fmt has one %s, the file's name.
 * Caller holds pc.lock. */
static void unmodelled(unsigned file, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void unmodelled(unsigned file, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    size_t len = n < 0                      ? 0
                 : (size_t)n < sizeof(text) ? (size_t)n
                                            : sizeof(text) - 1;
    struct iovec v = {text, len};
    log_rec(file, PC_REC_UNMODELLED, 0, 0, &v, 1, len);
}

/* Exported for the workload (see pc_log.h). */
int pc_note(const char *text);
int pc_note(const char *text)
{
    pc_ready();
    if (!pc.active)
        return -1;
    size_t n = strnlen(text, PC_NOTE_MAX);
    struct iovec v = {(void *)text, n};
    pthread_mutex_lock(&pc.lock);
    log_rec(0, PC_REC_NOTE, 0, 0, &v, 1, n); /* a note names no file */
    pthread_mutex_unlock(&pc.lock);
    return 0;
}

/* ---- descriptors -------------------------------------------------------- */

/* pc.fd[] is written under pc.lock but read without it on the fast path
 * (a call on a descriptor of no watched file never takes the lock): an
 * entry changes only when its descriptor is opened, duplicated onto or
 * closed, which no correct program races with a call on it. */
static unsigned fd_flags(int fd)
{
    return fd >= 0 && fd < PC_MAX_FD
               ? __atomic_load_n(&pc.fd[fd], __ATOMIC_ACQUIRE)
               : 0;
}

static void fd_mark(int fd, unsigned char flags)
{
    __atomic_store_n(&pc.fd[fd], flags, __ATOMIC_RELEASE);
}

static bool watched(int fd)
{
    return pc.active && (fd_flags(fd) & FD_WATCHED);
}

/* The file (enum pc_file) of a watched fd. */
static unsigned fd_file(int fd)
{
    return fd_flags(fd) >> FD_FILE_SHIFT;
}

/* The file a watched fd writes, as a bit of a file mask; 0 for other fds. */
static unsigned fd_file_mask(int fd)
{
    return watched(fd) ? 1u << fd_file(fd) : 0;
}

/* The watched file that path's last component names (the cheap test
 * first): its enum pc_file, or -1 for none. */
static int file_named(const char *path)
{
    if (!path)
        return -1;
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    for (unsigned f = 0; f < PC_NFILES; f++)
        if (strcmp(base, pc_file_name(f)) == 0)
            return (int)f;
    return -1;
}

/* After a successful open of a path named like watched file `file`: is fd
 * ours? Caller holds pc.lock. */
static void fd_opened(int fd, int oflags, unsigned file)
{
    char link[64], real[PATH_MAX];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, sizeof(real) - 1);
    if (n < 0)
        return;
    real[n] = '\0';
    /* $PC_DIR may be made after we start (the store creates it) */
    if (!pc.rdir[0] && !realpath(pc.dir, pc.rdir)) {
        pc.rdir[0] = '\0';
        return;
    }
    char target[sizeof(pc.rdir) + 16];
    snprintf(target, sizeof(target), "%s/%s", pc.rdir, pc_file_name(file));
    if (strcmp(real, target) != 0)
        return;
    if (fd >= PC_MAX_FD) {
        errno = EMFILE;
        die("a watched file opened on a descriptor above PC_MAX_FD");
    }
    /* O_SYNC includes the O_DSYNC bit on Linux */
    fd_mark(fd, (unsigned char)(FD_WATCHED | (file << FD_FILE_SHIFT) |
                                ((oflags & O_DSYNC) ? FD_DSYNC : 0)));
    pc.nwatched[file]++;
    struct stat st;
    uint64_t size = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    log_rec(file, PC_REC_OPEN, (oflags & O_TRUNC) ? PC_FLAG_TRUNCATED : 0, size,
            NULL, 0, 0);
}

static void fd_closed(int fd)
{
    if (fd_flags(fd) & FD_WATCHED)
        pc.nwatched[fd_file(fd)]--;
    if (fd >= 0 && fd < PC_MAX_FD)
        fd_mark(fd, 0);
}

/* oldfd was duplicated onto ret (if >= 0). Caller holds pc.lock. */
static void fd_copied(int oldfd, int ret)
{
    if (ret < 0 || ret == oldfd) /* dup2(fd, fd) changes nothing */
        return;
    fd_closed(ret); /* dup2/dup3 closed whatever was there */
    if (fd_flags(oldfd) & FD_WATCHED) {
        if (ret >= PC_MAX_FD) {
            errno = EMFILE;
            die("a watched file duplicated onto a descriptor above "
                "PC_MAX_FD");
        }
        fd_mark(ret, (unsigned char)fd_flags(oldfd));
        pc.nwatched[fd_file(oldfd)]++;
    }
}

/* as glibc's __OPEN_NEEDS_MODE: only then was a mode passed */
static int mode_arg(int oflags, va_list ap)
{
    bool needs = (oflags & O_CREAT) || (oflags & O_TMPFILE) == O_TMPFILE;
    return needs ? va_arg(ap, int) : 0;
}

/* No other thread can use the new descriptor before the call returns, so
 * the open itself runs without the lock. */
#define OPEN_BODY(call, path, oflags)                                          \
    do {                                                                       \
        pc_ready();                                                            \
        int fd_ = (call);                                                      \
        int e_ = errno;                                                        \
        int file_ = fd_ >= 0 && pc.active ? file_named(path) : -1;             \
        if (file_ >= 0) {                                                      \
            pthread_mutex_lock(&pc.lock);                                      \
            fd_opened(fd_, oflags, (unsigned)file_);                           \
            pthread_mutex_unlock(&pc.lock);                                    \
        }                                                                      \
        errno = e_;                                                            \
        return fd_;                                                            \
    } while (0)

int open(const char *path, int oflags, ...)
{
    va_list ap;
    va_start(ap, oflags);
    int mode = mode_arg(oflags, ap);
    va_end(ap);
    OPEN_BODY(real_open(path, oflags, mode), path, oflags);
}

int open64(const char *path, int oflags, ...)
{
    va_list ap;
    va_start(ap, oflags);
    int mode = mode_arg(oflags, ap);
    va_end(ap);
    OPEN_BODY((real_open64 ? real_open64 : real_open)(path, oflags, mode), path,
              oflags);
}

int openat(int dirfd, const char *path, int oflags, ...)
{
    va_list ap;
    va_start(ap, oflags);
    int mode = mode_arg(oflags, ap);
    va_end(ap);
    OPEN_BODY(real_openat(dirfd, path, oflags, mode), path, oflags);
}

int openat64(int dirfd, const char *path, int oflags, ...)
{
    va_list ap;
    va_start(ap, oflags);
    int mode = mode_arg(oflags, ap);
    va_end(ap);
    OPEN_BODY((real_openat64 ? real_openat64 : real_openat)(dirfd, path, oflags,
                                                            mode),
              path, oflags);
}

/* the _FORTIFY_SOURCE entry points of the calls above */
int __open_2(const char *path, int oflags);
int __open_2(const char *path, int oflags)
{
    OPEN_BODY(real_open(path, oflags), path, oflags);
}

int __open64_2(const char *path, int oflags);
int __open64_2(const char *path, int oflags)
{
    OPEN_BODY(real_open(path, oflags), path, oflags);
}

int __openat_2(int dirfd, const char *path, int oflags);
int __openat_2(int dirfd, const char *path, int oflags)
{
    OPEN_BODY(real_openat(dirfd, path, oflags), path, oflags);
}

int __openat64_2(int dirfd, const char *path, int oflags);
int __openat64_2(int dirfd, const char *path, int oflags)
{
    OPEN_BODY(real_openat(dirfd, path, oflags), path, oflags);
}

int creat(const char *path, mode_t mode)
{
    OPEN_BODY(real_creat(path, mode), path, O_CREAT | O_WRONLY | O_TRUNC);
}

int creat64(const char *path, mode_t mode)
{
    OPEN_BODY((real_creat64 ? real_creat64 : real_creat)(path, mode), path,
              O_CREAT | O_WRONLY | O_TRUNC);
}

int close(int fd)
{
    pc_ready();
    if (!watched(fd))
        return real_close(fd);
    pthread_mutex_lock(&pc.lock);
    int rc = real_close(fd);
    int e = errno;
    fd_closed(fd); /* Linux frees the descriptor even when close fails */
    pthread_mutex_unlock(&pc.lock);
    errno = e;
    return rc;
}

int dup(int oldfd)
{
    pc_ready();
    if (!watched(oldfd))
        return real_dup(oldfd);
    pthread_mutex_lock(&pc.lock);
    int rc = real_dup(oldfd);
    int e = errno;
    fd_copied(oldfd, rc);
    pthread_mutex_unlock(&pc.lock);
    errno = e;
    return rc;
}

int dup2(int oldfd, int newfd)
{
    pc_ready();
    if (!watched(oldfd) && !watched(newfd))
        return real_dup2(oldfd, newfd);
    pthread_mutex_lock(&pc.lock);
    int rc = real_dup2(oldfd, newfd);
    int e = errno;
    fd_copied(oldfd, rc);
    pthread_mutex_unlock(&pc.lock);
    errno = e;
    return rc;
}

int dup3(int oldfd, int newfd, int flags)
{
    pc_ready();
    if (!watched(oldfd) && !watched(newfd))
        return real_dup3(oldfd, newfd, flags);
    pthread_mutex_lock(&pc.lock);
    int rc = real_dup3(oldfd, newfd, flags);
    int e = errno;
    fd_copied(oldfd, rc);
    pthread_mutex_unlock(&pc.lock);
    errno = e;
    return rc;
}

static int fcntl_common(int (*real)(int, int, ...), int fd, int cmd, void *arg)
{
    pc_ready();
    if (!watched(fd) || (cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC))
        return real(fd, cmd, arg);
    pthread_mutex_lock(&pc.lock);
    int rc = real(fd, cmd, arg);
    int e = errno;
    fd_copied(fd, rc);
    pthread_mutex_unlock(&pc.lock);
    errno = e;
    return rc;
}

/* Every fcntl argument fits a pointer-sized register on the ABIs we build
 * for, so forwarding it as void * is exact. */
int fcntl(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return fcntl_common(real_fcntl, fd, cmd, arg);
}

int fcntl64(int fd, int cmd, ...);
int fcntl64(int fd, int cmd, ...)
{
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return fcntl_common(real_fcntl64 ? real_fcntl64 : real_fcntl, fd, cmd, arg);
}

/* ---- writes ------------------------------------------------------------ */

/* Logs `n` bytes of iov written at off (n > 0), then for an O_DSYNC fd the
 * range is on disk: the flag says so. Caller holds pc.lock. */
static void logged_write(int fd, const struct iovec *iov, int iovcnt,
                         uint64_t off, ssize_t n)
{
    if (n <= 0 || !watched(fd))
        return;
    log_rec(fd_file(fd), PC_REC_WRITE,
            (fd_flags(fd) & FD_DSYNC) ? PC_FLAG_DSYNC : 0, off, iov, iovcnt,
            (uint64_t)n);
}

/* write/writev advance the file offset (or append): the bytes landed at
 * [pos - n, pos) with pos the offset after the call. */
static void logged_seq_write(int fd, const struct iovec *iov, int iovcnt,
                             ssize_t n)
{
    if (n <= 0 || !watched(fd))
        return;
    off_t pos = lseek(fd, 0, SEEK_CUR);
    if (pos < 0 || pos < n)
        die("lseek after a write to a watched file");
    logged_write(fd, iov, iovcnt, (uint64_t)(pos - n), n);
}

#define WRITE_BODY(call, logcall)                                              \
    do {                                                                       \
        pc_ready();                                                            \
        if (!watched(fd))                                                      \
            return (call);                                                     \
        pthread_mutex_lock(&pc.lock);                                          \
        ssize_t n = (call);                                                    \
        int e_ = errno;                                                        \
        logcall;                                                               \
        pthread_mutex_unlock(&pc.lock);                                        \
        errno = e_;                                                            \
        return n;                                                              \
    } while (0)

ssize_t write(int fd, const void *buf, size_t count)
{
    struct iovec v = {(void *)buf, count};
    WRITE_BODY(real_write(fd, buf, count), logged_seq_write(fd, &v, 1, n));
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
    WRITE_BODY(real_writev(fd, iov, iovcnt),
               logged_seq_write(fd, iov, iovcnt, n));
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t off)
{
    struct iovec v = {(void *)buf, count};
    WRITE_BODY(real_pwrite(fd, buf, count, off),
               logged_write(fd, &v, 1, (uint64_t)off, n));
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off_t off)
{
    struct iovec v = {(void *)buf, count};
    WRITE_BODY(
        (real_pwrite64 ? real_pwrite64 : real_pwrite)(fd, buf, count, off),
        logged_write(fd, &v, 1, (uint64_t)off, n));
}

ssize_t pwritev(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
    WRITE_BODY(real_pwritev(fd, iov, iovcnt, off),
               logged_write(fd, iov, iovcnt, (uint64_t)off, n));
}

ssize_t pwritev64(int fd, const struct iovec *iov, int iovcnt, off_t off)
{
    WRITE_BODY(
        (real_pwritev64 ? real_pwritev64 : real_pwritev)(fd, iov, iovcnt, off),
        logged_write(fd, iov, iovcnt, (uint64_t)off, n));
}

/* pwritev2 with off == -1 writes at (and advances) the file offset. A
 * RWF_DSYNC/RWF_SYNC write is durable on return like an O_DSYNC fd's. */
static void logged_pwritev2(int fd, const struct iovec *iov, int iovcnt,
                            off_t off, int flags, ssize_t n)
{
    if (n <= 0 || !watched(fd))
        return;
    uint64_t at = (uint64_t)off;
    if (off == -1) {
        off_t pos = lseek(fd, 0, SEEK_CUR);
        if (pos < 0 || pos < n)
            die("lseek after pwritev2 to a watched file");
        at = (uint64_t)(pos - n);
    }
    unsigned f = (fd_flags(fd) & FD_DSYNC) ? PC_FLAG_DSYNC : 0;
#ifdef RWF_DSYNC
    if (flags & RWF_DSYNC)
        f |= PC_FLAG_DSYNC;
#endif
#ifdef RWF_SYNC
    if (flags & RWF_SYNC)
        f |= PC_FLAG_DSYNC;
#endif
    log_rec(fd_file(fd), PC_REC_WRITE, f, at, iov, iovcnt, (uint64_t)n);
}

ssize_t pwritev2(int fd, const struct iovec *iov, int iovcnt, off_t off,
                 int flags)
{
    WRITE_BODY(real_pwritev2(fd, iov, iovcnt, off, flags),
               logged_pwritev2(fd, iov, iovcnt, off, flags, n));
}

ssize_t pwritev64v2(int fd, const struct iovec *iov, int iovcnt, off_t off,
                    int flags)
{
    WRITE_BODY((real_pwritev64v2 ? real_pwritev64v2
                                 : real_pwritev2)(fd, iov, iovcnt, off, flags),
               logged_pwritev2(fd, iov, iovcnt, off, flags, n));
}

/* ---- syncs ------------------------------------------------------------- */

/* Logs a SYNC record for each file in mask (bit 1 << enum pc_file), in
 * file order. Caller holds pc.lock. */
static void log_syncs(unsigned mask)
{
    for (unsigned f = 0; f < PC_NFILES; f++)
        if (mask & (1u << f))
            log_rec(f, PC_REC_SYNC, 0, 0, NULL, 0, 0);
}

/* The watched files some fd has open now. Caller holds pc.lock. */
static unsigned open_files(void)
{
    unsigned mask = 0;
    for (unsigned f = 0; pc.active && f < PC_NFILES; f++)
        if (pc.nwatched[f] > 0)
            mask |= 1u << f;
    return mask;
}

/* mask is evaluated after the call, under the lock */
#define SYNC_BODY(call, mask)                                                  \
    do {                                                                       \
        pc_ready();                                                            \
        pthread_mutex_lock(&pc.lock);                                          \
        int rc_ = (call);                                                      \
        int e_ = errno;                                                        \
        if (rc_ == 0)                                                          \
            log_syncs(mask);                                                   \
        pthread_mutex_unlock(&pc.lock);                                        \
        errno = e_;                                                            \
        return rc_;                                                            \
    } while (0)

int fsync(int fd)
{
    pc_ready();
    if (!watched(fd))
        return real_fsync(fd);
    SYNC_BODY(real_fsync(fd), fd_file_mask(fd));
}

int fdatasync(int fd)
{
    pc_ready();
    if (!watched(fd))
        return real_fdatasync(fd);
    SYNC_BODY(real_fdatasync(fd), fd_file_mask(fd));
}

/* syncfs/sync flush every file: each watched file that is open gets its
 * own SYNC record (a cut between them is a cut during the call). */
int syncfs(int fd)
{
    SYNC_BODY(real_syncfs(fd), open_files());
}

void sync(void)
{
    pc_ready();
    pthread_mutex_lock(&pc.lock);
    real_sync();
    log_syncs(open_files());
    pthread_mutex_unlock(&pc.lock);
}

int sync_file_range(int fd, off_t off, off_t nbytes, unsigned int flags)
{
    pc_ready();
    if (!watched(fd))
        return real_sync_file_range(fd, off, nbytes, flags);
    pthread_mutex_lock(&pc.lock);
    int rc = real_sync_file_range(fd, off, nbytes, flags);
    int e = errno;
    unsigned need = SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;
    if (rc == 0 && watched(fd) && (flags & need) == need) {
        /* nbytes == 0 means "to the end of the file" */
        uint64_t len = nbytes ? (uint64_t)nbytes : UINT64_MAX - (uint64_t)off;
        struct iovec v = {&len, sizeof(len)};
        log_rec(fd_file(fd), PC_REC_SYNC_RANGE, 0, (uint64_t)off, &v, 1,
                sizeof(len));
    }
    pthread_mutex_unlock(&pc.lock);
    errno = e;
    return rc;
}

/* The watched files mapped in [addr, addr + len), as a file mask. Caller
 * holds pc.lock. */
static unsigned maps_in(const void *addr, size_t len)
{
    const char *a = addr;
    unsigned mask = 0;
    for (int i = 0; i < PC_MAX_MAPS; i++) {
        pc_map *m = &pc.map[i];
        if (m->len && a < m->addr + m->len && a + len > m->addr)
            mask |= 1u << m->file;
    }
    return mask;
}

int msync(void *addr, size_t len, int flags)
{
    SYNC_BODY(real_msync(addr, len, flags),
              pc.active && (flags & MS_SYNC) ? maps_in(addr, len) : 0);
}

static void mapped(void *ret, size_t len, int prot, int flags, int fd)
{
    if (ret == MAP_FAILED || !watched(fd) || !(flags & MAP_SHARED))
        return;
    if (prot & PROT_WRITE) {
        unmodelled(fd_file(fd),
                   "mmap(PROT_WRITE, MAP_SHARED) of %s: writes through the "
                   "map are not logged",
                   pc_file_name(fd_file(fd)));
        return;
    }
    for (int i = 0; i < PC_MAX_MAPS; i++) {
        if (!pc.map[i].len) {
            pc.map[i] = (pc_map){ret, len, fd_file(fd)};
            return;
        }
    }
    unmodelled(fd_file(fd), "more than PC_MAX_MAPS mappings of %s",
               pc_file_name(fd_file(fd)));
}

#define MMAP_BODY(call)                                                        \
    do {                                                                       \
        pc_ready();                                                            \
        if (!watched(fd))                                                      \
            return (call);                                                     \
        pthread_mutex_lock(&pc.lock);                                          \
        void *p_ = (call);                                                     \
        int e_ = errno;                                                        \
        mapped(p_, len, prot, flags, fd);                                      \
        pthread_mutex_unlock(&pc.lock);                                        \
        errno = e_;                                                            \
        return p_;                                                             \
    } while (0)

void *mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    MMAP_BODY(real_mmap(addr, len, prot, flags, fd, off));
}

void *mmap64(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    MMAP_BODY((real_mmap64 ? real_mmap64 : real_mmap)(addr, len, prot, flags,
                                                      fd, off));
}

int munmap(void *addr, size_t len)
{
    pc_ready();
    pthread_mutex_lock(&pc.lock);
    int rc = real_munmap(addr, len);
    int e = errno;
    for (int i = 0; rc == 0 && i < PC_MAX_MAPS; i++)
        if (pc.map[i].len && pc.map[i].addr == addr)
            pc.map[i].len = 0;
    pthread_mutex_unlock(&pc.lock);
    errno = e;
    return rc;
}

/* ---- size and allocation ----------------------------------------------- */

int ftruncate(int fd, off_t len)
{
    pc_ready();
    if (!watched(fd))
        return real_ftruncate(fd, len);
    pthread_mutex_lock(&pc.lock);
    int rc = real_ftruncate(fd, len);
    int e = errno;
    if (rc == 0 && watched(fd))
        log_rec(fd_file(fd), PC_REC_TRUNC, 0, (uint64_t)len, NULL, 0, 0);
    pthread_mutex_unlock(&pc.lock);
    errno = e;
    return rc;
}

int ftruncate64(int fd, off_t len)
{
    pc_ready();
    if (!watched(fd))
        return (real_ftruncate64 ? real_ftruncate64 : real_ftruncate)(fd, len);
    pthread_mutex_lock(&pc.lock);
    int rc = (real_ftruncate64 ? real_ftruncate64 : real_ftruncate)(fd, len);
    int e = errno;
    if (rc == 0 && watched(fd))
        log_rec(fd_file(fd), PC_REC_TRUNC, 0, (uint64_t)len, NULL, 0, 0);
    pthread_mutex_unlock(&pc.lock);
    errno = e;
    return rc;
}

/* fallocate that only reserves blocks (mode 0 or FALLOC_FL_KEEP_SIZE, the
 * size unchanged) changes no byte a reader sees, before or after a crash:
 * it is not logged. Any other mode (punch hole, zero range, collapse,
 * insert) or a size change is UNMODELLED. Caller holds pc.lock. */
static void allocated(int fd, int mode, off_t size_before, int rc)
{
    if (rc != 0 || !watched(fd))
        return;
    struct stat st;
    if ((mode & ~FALLOC_FL_KEEP_SIZE) == 0 && fstat(fd, &st) == 0 &&
        st.st_size == size_before)
        return;
    unmodelled(fd_file(fd), "fallocate that changes %s's content or size",
               pc_file_name(fd_file(fd)));
}

static off_t size_of(int fd)
{
    struct stat st;
    return watched(fd) && fstat(fd, &st) == 0 ? st.st_size : -1;
}

#define ALLOC_BODY(call, fd, mode)                                             \
    do {                                                                       \
        pc_ready();                                                            \
        if (!watched(fd))                                                      \
            return (call);                                                     \
        pthread_mutex_lock(&pc.lock);                                          \
        off_t before_ = size_of(fd);                                           \
        int rc_ = (call);                                                      \
        int e_ = errno;                                                        \
        allocated(fd, mode, before_, rc_);                                     \
        pthread_mutex_unlock(&pc.lock);                                        \
        errno = e_;                                                            \
        return rc_;                                                            \
    } while (0)

int fallocate(int fd, int mode, off_t off, off_t len)
{
    ALLOC_BODY(real_fallocate(fd, mode, off, len), fd, mode);
}

int fallocate64(int fd, int mode, off_t off, off_t len)
{
    ALLOC_BODY((real_fallocate64 ? real_fallocate64 : real_fallocate)(fd, mode,
                                                                      off, len),
               fd, mode);
}

/* posix_fallocate returns an errno value, not -1; 0 is success either way */
int posix_fallocate(int fd, off_t off, off_t len)
{
    ALLOC_BODY(real_posix_fallocate(fd, off, len), fd, 0);
}

int posix_fallocate64(int fd, off_t off, off_t len)
{
    ALLOC_BODY((real_posix_fallocate64 ? real_posix_fallocate64
                                       : real_posix_fallocate)(fd, off, len),
               fd, 0);
}

ssize_t copy_file_range(int in, off_t *inoff, int out, off_t *outoff,
                        size_t len, unsigned int flags)
{
    pc_ready();
    if (!watched(out))
        return real_copy_file_range(in, inoff, out, outoff, len, flags);
    pthread_mutex_lock(&pc.lock);
    ssize_t n = real_copy_file_range(in, inoff, out, outoff, len, flags);
    int e = errno;
    if (n > 0)
        unmodelled(fd_file(out), "copy_file_range onto %s",
                   pc_file_name(fd_file(out)));
    pthread_mutex_unlock(&pc.lock);
    errno = e;
    return n;
}
