/*
 * pc_check.c - the checker of the power-cut test (promise P2: a power cut
 * loses nothing that fsync() acknowledged, and the store always reopens
 * cleanly). It reads the log that pc_preload.so wrote while pc_workload
 * ran, rebuilds the store files (data.mdb, intent.log) a disk may hold
 * after a power cut at random points of that run, and checks each image.
 * It must never judge an image by anything but the store's public API and
 * LMDB's own reads, and never report a pass for a log it cannot model (it
 * refuses those, exit 2).
 *
 * Why this way (the reasoning, for the next engineer):
 *
 * - What a power cut must not damage are two files of the store
 *   directory (enum pc_file): the LMDB file STORE/data.mdb and the store's
 *   intent log STORE/intent.log (store/wal.c). (STORE/dirty/ holds only
 *   unpublished blocks; the store deletes it whole when it opens after a
 *   reboot. The images here have no dirty/, so the store takes that path,
 *   as after a real power cut. Pack files: see run_child().) LMDB writes
 *   its pages with pwrite and lseek+writev and makes them durable with
 *   fdatasync; it reads them back through a read-only shared mmap. Meta
 *   pages go through a second fd opened O_DSYNC unless MDB_NOSYNC or
 *   MDB_NOMETASYNC is set (then through the first). intent.log is made
 *   with open(O_RDWR|O_CREAT), filled with zeros by pwrite and
 *   fdatasync'd; after that it is only written with pwrite (records at
 *   rising offsets, at times again from 0) and made durable with
 *   fdatasync, never truncated or mapped, and read with pread when the
 *   store opens (which may rewrite it); a store made before it existed has
 *   none. So every change a power cut could lose passes through a handful
 *   of libc calls that an LD_PRELOAD shim can log (as Jepsen's LazyFS does
 *   below a FUSE mount, here without the mount); each record names its
 *   file (pc_log.h). The shim holds one mutex across each call and its log
 *   record, so the log's order is the kernel's. strace of pc_workload on
 *   Debian 12 (liblmdb 0.9.24) shows, for data.mdb: open O_RDWR|O_CREAT
 *   (fd A) and O_WRONLY|O_DSYNC (fd B, unused under both flags the store
 *   uses), pwrite and writev on A, fdatasync(A), and with group commit
 *   fallocate(A, FALLOC_FL_KEEP_SIZE) (changes no byte; not logged).
 *   Nothing else writes it; lock.mdb holds no data (LMDB rebuilds it on
 *   open).
 *
 * - The crash model is the page cache's. After fsync/fdatasync (or an
 *   O_DSYNC write, for the pages it covers) the disk holds the file as the
 *   page cache held it. Between syncs the kernel may write back any dirty
 *   4 KiB page at any moment, in any order, any number of times, so after a
 *   cut each page dirtied since it was last durable holds one of its
 *   versions: the durable one, or the page as it stood after any of the
 *   writes that touched it before the cut. Pages are independent (no write
 *   barrier between them). The file's size is its durable size, grown to
 *   the end of the bytes of any page that was written back. Two modes:
 *     drop  every dirty page keeps its durable version: the run as of its
 *           last sync. This is what a disk that wrote nothing back shows.
 *     torn  each dirty page independently: written back at its newest
 *           version with probability q (q drawn per cut from [0, 1]),
 *           else its durable version or a random intermediate one.
 *   Within a 4 KiB page nothing is torn (LMDB writes whole pages; its meta
 *   write is a ~100-byte write inside one sector). A real disk can do
 *   worse; a store that fails this model fails on real hardware too.
 *   Each file follows this model on its own: its own pages, syncs (an
 *   fsync or fdatasync syncs its fd's file; syncfs and sync log one SYNC
 *   per open file, so a cut may fall between them) and durable size; in
 *   torn mode q is drawn per file, and nothing orders the two files'
 *   write-back except their syncs. A file is in the image when its first
 *   OPEN came before the cut, else absent. Directory entries are not
 *   modelled: a file opened before the cut is there even if its directory
 *   was never fsync'd, at its durable size (0 when nothing of it was
 *   synced or written back).
 *
 * - Why torn finds MDB_NOSYNC's problem: LMDB is copy-on-write with two
 *   meta pages and reuses a page once no snapshot newer than the oldest
 *   reader needs it. That is safe only if the meta page of commit N reaches
 *   the disk after the data pages of commit N, and the pages of the last
 *   *durable* snapshot are not reused before a newer one is durable. With
 *   MDB_NOSYNC neither holds between two fsyncs: a written-back meta page
 *   may point at pages that were not, and commits after the last sync
 *   overwrite the synced snapshot's pages. With MDB_NOMETASYNC each commit
 *   writes its pages, fdatasyncs, then writes its meta: a cut shows the
 *   newest meta (pages durable) or the one before (its pages untouched:
 *   LMDB never reuses pages of the two newest snapshots).
 *
 * - The oracle. Before each op the workload notes "OP" with every path the
 *   op may change (a directory name covers everything below it); after
 *   mfs_store_fsync returned it notes what fsync promised: "ACK FILE path
 *   size hash" for each file with no unpublished writes, "ACK NAME path"
 *   (a regular file is there) for the others, and "ACK TREE hash-of-dump"
 *   when no file has unpublished writes. At a cut after record c, a FILE
 *   or NAME ACK is checked when it is the newest for its path and no OP
 *   before c touched the path after it (an unsynced rename, unlink or
 *   write may or may not survive, so nothing is claimed then). The TREE
 *   ACK is checked only when no OP at all came between it and the cut:
 *   then the whole dump must match. Those are exactly the states the store
 *   promised, so no false failure.
 *   Cut points: three in four uniform over the records after the first
 *   ACK; the rest just before a sync (the most unsynced writes) or just
 *   after a tree ACK (so the whole-tree oracle gets its turn).
 *
 * - Checks per image, each in a child process (a damaged LMDB file can
 *   make LMDB fault or loop; the child reports SIGBUS/SIGSEGV or a hang
 *   as a failure): a raw LMDB walk of every table and of the free list
 *   (entries counted against mdb_stat, keys in order, every value byte
 *   read, free page numbers in range); mfs_store_open must succeed;
 *   mfs_store_dump must succeed and equal the dump after
 *   mfs_store_view_rebuild; every checkable ACK holds; the store then takes
 *   a write, an fsync, a close and a reopen (that exercises LMDB's free
 *   list, the first thing a damaged image trips on).
 *
 * - Before any cut, the whole log replayed must equal each file the
 *   workload left (--final for data.mdb, --final-wal for intent.log), and
 *   a file the log never opened must not exist: proof that the shim saw
 *   every write. --final-wal may be left out only when the log never
 *   opened intent.log.
 *
 * Usage: pc_check --log LOG --final DATA.MDB [--final-wal INTENT.LOG]
 *                 [--cuts N] [--seed N] [--mode drop|torn|both] [--at REC]
 *                 [--keep DIR] [--packs DIR] [--report N] [--tmp DIR]
 *                 [--verbose]
 * Exit: 0 all cuts pass, 1 a cut failed, 2 usage or a log it cannot model.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <lmdb.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pc_common.h"
#include "pc_log.h"
#include "store.h"

#define PC_PAGE 4096u
#define PC_MAX_FILE ((uint64_t)16 << 30) /* the checker holds 3 copies */
#define CHILD_TIMEOUT_S 60
#define MAX_ACK_PATHS 256
#define TMP_MAX_LEN 1024 /* --tmp, --keep and our directory under --tmp */
#define DIR_MAX (TMP_MAX_LEN + 64) /* a cut's directory */
#define MAX_REPORTED 8 /* failing cuts printed in full (--report N) */
#define MAX_FINDINGS 4 /* findings printed per failing cut */

enum { MODE_DROP = 0, MODE_TORN = 1 };
static const char *const mode_name[] = {"drop", "torn"};

/* ---- the log ------------------------------------------------------------ */

typedef struct rec {
    unsigned type, flags; /* flags: the PC_FLAG_* bits only */
    unsigned file;        /* enum pc_file; 0 for a NOTE */
    uint64_t off, len;
    const unsigned char *data;
    int note; /* index into notes[] for PC_REC_NOTE, else -1 */
} rec;

typedef struct pclog {
    unsigned char *map;
    size_t size;
    rec *r;
    size_t n;
    pc_note_msg *notes;
    size_t nnotes;
    size_t first_ack;             /* index of the first ACK record */
    uint64_t max_size[PC_NFILES]; /* largest size each file reached */
    bool opened[PC_NFILES];       /* the log opened the file */
    uint64_t seed, window;        /* from START */
} pclog;

static int refuse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int refuse(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pc_check: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return -1;
}

static int log_load(pclog *l, const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return refuse("cannot open the log %s: %s", path, strerror(e));
    }
    l->size = (size_t)st.st_size;
    l->map =
        l->size ? mmap(NULL, l->size, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
    close(fd);
    if (l->size && l->map == MAP_FAILED)
        return refuse("mmap of the log: %s", strerror(errno));
    size_t cap = 0;
    l->first_ack = SIZE_MAX;
    uint64_t size[PC_NFILES] = {0}; /* sizes as the page cache has them */
    for (size_t at = 0; at < l->size;) {
        pc_rec h;
        if (l->size - at < sizeof(h))
            return refuse("log: truncated header at byte %zu", at);
        memcpy(&h, l->map + at, sizeof(h));
        at += sizeof(h);
        if (h.magic != PC_LOG_MAGIC || h.len > l->size - at)
            return refuse("log: bad record at byte %zu", at - sizeof(h));
        if (l->n == cap) {
            cap = cap ? cap * 2 : 4096;
            l->r = realloc(l->r, cap * sizeof(*l->r));
            l->notes = realloc(l->notes, cap * sizeof(*l->notes));
            if (!l->r || !l->notes)
                return refuse("out of memory");
        }
        unsigned f = PC_REC_FILE(h.flags);
        if (f >= PC_NFILES || (h.type == PC_REC_NOTE && f))
            return refuse("log: record %zu names file %u", l->n, f);
        const char *name = pc_file_name(f);
        rec *r = &l->r[l->n];
        *r = (rec){
            h.type, h.flags & ~PC_FILE_MASK, f, h.off, h.len, l->map + at, -1};
        at += h.len;
        if (h.type != PC_REC_NOTE && h.type != PC_REC_OPEN && !l->opened[f])
            return refuse("log: record %zu (type %u) concerns %s before it "
                          "was opened",
                          l->n, h.type, name);
        switch (h.type) {
        case PC_REC_WRITE:
            if (h.off > PC_MAX_FILE || h.len > PC_MAX_FILE - h.off)
                return refuse("log: a write to %s past %llu bytes: too "
                              "large to model in memory",
                              name, (unsigned long long)PC_MAX_FILE);
            if (h.off + h.len > size[f])
                size[f] = h.off + h.len;
            break;
        case PC_REC_OPEN:
            /* the run starts from no file; later opens must find the file
             * as the log left it, or something wrote it behind our back */
            if (h.off != size[f] || (h.flags & PC_FLAG_TRUNCATED && size[f]))
                return refuse("log: %s opened with size %" PRIu64
                              ", the log says %" PRIu64
                              "; it changed outside the log",
                              name, h.off, size[f]);
            l->opened[f] = true;
            break;
        case PC_REC_SYNC:
            break;
        case PC_REC_SYNC_RANGE:
            if (h.len != sizeof(uint64_t))
                return refuse("log: a sync_file_range record without length");
            break;
        case PC_REC_TRUNC:
            return refuse("log: ftruncate of %s (record %zu): the crash "
                          "model here does not cover a size change that is "
                          "not a write; extend pc_check first",
                          name, l->n);
        case PC_REC_UNMODELLED:
            return refuse("log: record %zu (%s): %.*s; the crash model "
                          "does not cover it",
                          l->n, name, (int)h.len, (const char *)r->data);
        case PC_REC_NOTE: {
            pc_note_msg *m = &l->notes[l->nnotes];
            if (pc_note_parse((const char *)r->data, h.len, m))
                return refuse("log: a note I do not know: '%.*s'", (int)h.len,
                              (const char *)r->data);
            if (m->kind == PC_NOTE_START) {
                l->seed = m->seed;
                l->window = m->window;
            }
            if (m->kind != PC_NOTE_OP && m->kind != PC_NOTE_START &&
                l->first_ack == SIZE_MAX)
                l->first_ack = l->n;
            r->note = (int)l->nnotes++;
            break;
        }
        default:
            return refuse("log: unknown record type %u", h.type);
        }
        if (size[f] > l->max_size[f])
            l->max_size[f] = size[f];
        l->n++;
    }
    if (l->first_ack == SIZE_MAX || l->first_ack + 1 >= l->n)
        return refuse("log: nothing after the first ACK; did the workload "
                      "run?");
    return 0;
}

/* ---- the page cache and the disk ----------------------------------------- */

typedef struct pagev {
    uint32_t *w; /* record indices of the writes since the page was durable */
    uint32_t n, cap;
    bool listed; /* in sim.dirty[] */
} pagev;

/* One watched file as the page cache and the disk hold it. */
typedef struct simfile {
    unsigned char *cache, *disk; /* cap bytes each; zero beyond the size */
    uint64_t csize, dsize, cap;
    pagev *pv; /* cap / PC_PAGE pages */
    uint64_t *dirty;
    size_t ndirty;
    size_t last_sync; /* record index of the last full sync (0: none) */
    bool exists;      /* opened at this point of the log */
} simfile;

typedef struct sim {
    const pclog *l;
    simfile f[PC_NFILES]; /* by enum pc_file */
} sim;

static int sim_init(sim *s, const pclog *l)
{
    memset(s, 0, sizeof(*s));
    s->l = l;
    for (unsigned k = 0; k < PC_NFILES; k++) {
        simfile *f = &s->f[k];
        f->cap = (l->max_size[k] + PC_PAGE - 1) / PC_PAGE * PC_PAGE + PC_PAGE;
        f->cache = calloc(1, f->cap);
        f->disk = calloc(1, f->cap);
        f->pv = calloc(f->cap / PC_PAGE, sizeof(*f->pv));
        f->dirty = calloc(f->cap / PC_PAGE, sizeof(*f->dirty));
        if (!f->cache || !f->disk || !f->pv || !f->dirty)
            return -1;
    }
    return 0;
}

static void sim_free(sim *s)
{
    for (unsigned k = 0; k < PC_NFILES; k++) {
        simfile *f = &s->f[k];
        for (uint64_t p = 0; f->pv && p < f->cap / PC_PAGE; p++)
            free(f->pv[p].w);
        free(f->pv);
        free(f->dirty);
        free(f->cache);
        free(f->disk);
    }
}

/* Page p is on disk as the page cache holds it now. */
static void page_durable(simfile *s, uint64_t p)
{
    memcpy(s->disk + p * PC_PAGE, s->cache + p * PC_PAGE, PC_PAGE);
    s->pv[p].n = 0;
}

static void sim_sync_all(simfile *s, size_t at)
{
    for (size_t i = 0; i < s->ndirty; i++) {
        page_durable(s, s->dirty[i]);
        s->pv[s->dirty[i]].listed = false;
    }
    s->ndirty = 0;
    s->dsize = s->csize;
    s->last_sync = at;
}

static void sim_sync_range(simfile *s, uint64_t off, uint64_t len)
{
    if (off >= s->csize)
        return;
    uint64_t end = len > s->csize - off ? s->csize : off + len;
    for (uint64_t p = off / PC_PAGE; p * PC_PAGE < end; p++)
        page_durable(s, p);
    if (end > s->dsize)
        s->dsize = end;
}

static int sim_apply(sim *sm, size_t i)
{
    const rec *r = &sm->l->r[i];
    simfile *s = &sm->f[r->file];
    switch (r->type) {
    case PC_REC_OPEN:
        s->exists = true;
        break;
    case PC_REC_WRITE: {
        if (!r->len)
            break;
        memcpy(s->cache + r->off, r->data, r->len);
        if (r->off + r->len > s->csize)
            s->csize = r->off + r->len;
        for (uint64_t p = r->off / PC_PAGE; p * PC_PAGE < r->off + r->len;
             p++) {
            pagev *v = &s->pv[p];
            if (v->n == v->cap) {
                v->cap = v->cap ? v->cap * 2 : 4;
                v->w = realloc(v->w, v->cap * sizeof(*v->w));
                if (!v->w)
                    return -1;
            }
            v->w[v->n++] = (uint32_t)i;
            if (!v->listed) {
                v->listed = true;
                s->dirty[s->ndirty++] = p;
            }
        }
        if (r->flags & PC_FLAG_DSYNC)
            sim_sync_range(s, r->off, r->len);
        break;
    }
    case PC_REC_SYNC:
        sim_sync_all(s, i);
        break;
    case PC_REC_SYNC_RANGE: {
        uint64_t len;
        memcpy(&len, r->data, sizeof(len));
        sim_sync_range(s, r->off, len);
        break;
    }
    default:
        break;
    }
    return 0;
}

/* ---- the oracle -------------------------------------------------------- */

typedef struct ackstate {
    pc_note_msg file[MAX_ACK_PATHS]; /* newest ACK FILE or NAME per path */
    size_t file_at[MAX_ACK_PATHS];
    bool file_valid[MAX_ACK_PATHS];
    size_t nfile;
    pc_note_msg tree;
    size_t tree_at;
    bool tree_valid;
    pc_note_msg held; /* the newest ACK HELD: what the store holds durably
                         never shrinks, so no OP makes it unclaimable */
    size_t held_at;
    bool held_valid;
} ackstate;

static void ack_note(ackstate *a, const pc_note_msg *m, size_t at)
{
    switch (m->kind) {
    case PC_NOTE_OP:
        a->tree_valid = false;
        for (size_t k = 0; k < a->nfile; k++)
            for (int t = 0; t < m->ntouched; t++)
                if (pc_name_covers(m->touched[t], a->file[k].path))
                    a->file_valid[k] = false;
        break;
    case PC_NOTE_ACK_FILE:
    case PC_NOTE_ACK_NAME: {
        size_t k = 0;
        while (k < a->nfile && strcmp(a->file[k].path, m->path) != 0)
            k++;
        if (k == MAX_ACK_PATHS)
            return; /* cannot happen with the workload's ~100 paths */
        if (k == a->nfile)
            a->nfile++;
        a->file[k] = *m;
        a->file_at[k] = at;
        a->file_valid[k] = true;
        break;
    }
    case PC_NOTE_ACK_TREE:
        a->tree = *m;
        a->tree_at = at;
        a->tree_valid = true;
        break;
    case PC_NOTE_ACK_HELD:
        a->held = *m;
        a->held_at = at;
        a->held_valid = true;
        break;
    default:
        break;
    }
}

/* ---- one crash image ----------------------------------------------------- */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t rng_next(rng *r)
{
    /* splitmix64: any seed, including 0, is fine */
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct cut {
    size_t at; /* records [0, at) happened */
    int mode;
} cut;

/* One file of a crash image. */
typedef struct imfile {
    unsigned char *buf; /* its simfile's cap bytes */
    uint64_t size;
    bool exists;           /* absent: the log had not opened it by the cut */
    size_t dirty, written; /* dirty pages, of which written back (any ver) */
} imfile;

typedef struct image {
    imfile f[PC_NFILES]; /* by enum pc_file */
} image;

/* Builds file `file` of the image; each file draws from its own stream
 * (data.mdb's is the one it had when it was the only file). */
static void imfile_build(const sim *sm, unsigned file, const cut *c,
                         uint64_t seed, imfile *im)
{
    const simfile *s = &sm->f[file];
    rng r = {seed ^ (c->at * 0x100000001b3ull) ^ ((uint64_t)c->mode << 61) ^
             (file * 0x9e3779b97f4a7c15ull)};
    memcpy(im->buf, s->disk, s->cap);
    im->size = s->dsize;
    im->exists = s->exists;
    im->dirty = im->written = 0;
    uint64_t q = rng_next(&r) % 101; /* % chance a page is fully written */
    for (size_t i = 0; i < s->ndirty; i++) {
        uint64_t p = s->dirty[i];
        const pagev *v = &s->pv[p];
        if (!v->n)
            continue;
        im->dirty++;
        uint32_t k = 0; /* versions applied: 0 = durable ... n = newest */
        if (c->mode == MODE_TORN) {
            if (rng_next(&r) % 100 < q)
                k = v->n;
            else if (rng_next(&r) % 2)
                k = (uint32_t)(rng_next(&r) % (v->n + 1));
        }
        if (!k)
            continue;
        im->written++;
        uint64_t lo = p * PC_PAGE, hi = lo + PC_PAGE;
        for (uint32_t j = 0; j < k; j++) {
            const rec *w = &sm->l->r[v->w[j]];
            uint64_t a = w->off > lo ? w->off : lo;
            uint64_t b = w->off + w->len < hi ? w->off + w->len : hi;
            memcpy(im->buf + a, w->data + (a - w->off), b - a);
            if (b > im->size)
                im->size = b;
        }
    }
}

/* Builds every file of the image, independently. */
static void image_build(const sim *s, const cut *c, uint64_t seed, image *im)
{
    for (unsigned k = 0; k < PC_NFILES; k++)
        imfile_build(s, k, c, seed, &im->f[k]);
}

/* ---- the checks (in a child) --------------------------------------------- */

typedef struct verdict {
    int fd; /* pipe to the parent */
    const char *phase;
    int findings;
} verdict;

static verdict V; /* child only: what the signal handler reports */

/* Reports one finding to the parent ("; " between findings); past the
 * first few it only counts them. */
static void child_say(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void child_say(const char *fmt, ...)
{
    char buf[2048];
    if (V.findings++ >= MAX_FINDINGS) {
        if (V.findings == MAX_FINDINGS + 1)
            (void)!write(V.fd, "; ...", 5);
        return;
    }
    int n = V.findings > 1 ? snprintf(buf, sizeof(buf), "; ") : 0;
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(buf) - 1)
        n = (int)sizeof(buf) - 1;
    (void)!write(V.fd, buf, (size_t)n);
}

/* A finding after which the next checks cannot run. */
#define CHILD_FAIL(...)                                                        \
    do {                                                                       \
        child_say(__VA_ARGS__);                                                \
        _exit(1);                                                              \
    } while (0)

/* A fault or the timeout in the child: say where, and stop. */
static void on_fault(int sig)
{
    /* async-signal-safe: write(2) of fixed strings only */
    const char *what = sig == SIGBUS    ? "crashed (SIGBUS)"
                       : sig == SIGSEGV ? "crashed (SIGSEGV)"
                       : sig == SIGABRT
                           ? "crashed (SIGABRT, an LMDB assertion?)"
                       : sig == SIGALRM ? "hung for the timeout"
                                        : "crashed (SIGFPE)";
    if (V.findings)
        (void)!write(V.fd, "; ", 2);
    (void)!write(V.fd, what, strlen(what));
    (void)!write(V.fd, " during ", 8);
    (void)!write(V.fd, V.phase, strlen(V.phase));
    _exit(1);
}

static const char *mdb_err(int rc)
{
    return mdb_strerror(rc);
}

/* Walks one LMDB table: entries in order, every byte read, the count equal
 * to mdb_stat's. Reports what is wrong and goes on. */
static void walk_table(MDB_txn *txn, MDB_dbi dbi, const char *name,
                       uint64_t *touch)
{
    MDB_stat st;
    MDB_cursor *c;
    int rc = mdb_stat(txn, dbi, &st);
    if (!rc)
        rc = mdb_cursor_open(txn, dbi, &c);
    if (rc) {
        child_say("lmdb walk: table %s: %s", name, mdb_err(rc));
        return;
    }
    unsigned dflags = 0;
    mdb_dbi_flags(txn, dbi, &dflags);
    MDB_val k, v, pk = {0, NULL}, pv = {0, NULL};
    size_t n = 0;
    while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
        int kc = n ? mdb_cmp(txn, dbi, &pk, &k) : -1;
        if (kc > 0 || (kc == 0 && (!(dflags & MDB_DUPSORT) ||
                                   mdb_dcmp(txn, dbi, &pv, &v) >= 0))) {
            child_say("lmdb walk: table %s: entry %zu out of order", name, n);
            mdb_cursor_close(c);
            return;
        }
        *touch = pc_hash(*touch, k.mv_data, k.mv_size);
        *touch = pc_hash(*touch, v.mv_data, v.mv_size);
        pk = k;
        pv = v;
        n++;
    }
    if (rc != MDB_NOTFOUND)
        child_say("lmdb walk: table %s after %zu entries: %s", name, n,
                  mdb_err(rc));
    else if (n != st.ms_entries)
        child_say("lmdb walk: table %s: %zu entries, its header says %zu", name,
                  n, (size_t)st.ms_entries);
    mdb_cursor_close(c);
}

static void lmdb_walk(const char *dir)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_cursor *c;
    MDB_dbi main_dbi;
    int rc = mdb_env_create(&env);
    if (!rc)
        rc = mdb_env_set_maxdbs(env, 64);
    if (!rc)
        rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS, 0600);
    if (rc) {
        child_say("lmdb walk: mdb_env_open: %s", mdb_err(rc));
        return;
    }
    MDB_envinfo info;
    mdb_env_info(env, &info);
    rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (!rc)
        rc = mdb_dbi_open(txn, NULL, 0, &main_dbi);
    if (rc) {
        child_say("lmdb walk: main table: %s", mdb_err(rc));
        mdb_env_close(env);
        return;
    }
    uint64_t touch = PC_HASH_INIT;
    walk_table(txn, main_dbi, "(main)", &touch);

    /* every key of the main table names a table of the store */
    rc = mdb_cursor_open(txn, main_dbi, &c);
    MDB_val k, v;
    while (!rc && (rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
        char name[128];
        if (k.mv_size >= sizeof(name)) {
            child_say("lmdb walk: a main-table key of %zu bytes", k.mv_size);
            continue;
        }
        memcpy(name, k.mv_data, k.mv_size);
        name[k.mv_size] = '\0';
        MDB_dbi dbi;
        int r2 = mdb_dbi_open(txn, name, 0, &dbi);
        if (r2)
            child_say("lmdb walk: table %s: %s", name, mdb_err(r2));
        else
            walk_table(txn, dbi, name, &touch);
    }
    if (rc != MDB_NOTFOUND)
        child_say("lmdb walk: listing tables: %s", mdb_err(rc));
    mdb_cursor_close(c);

    /* the free list (table 0): every page number it holds is in range */
    rc = mdb_cursor_open(txn, 0, &c);
    while (!rc && (rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
        const size_t *idl = v.mv_data;
        if (v.mv_size < sizeof(size_t) ||
            v.mv_size != (idl[0] + 1) * sizeof(size_t)) {
            child_say("lmdb walk: a free-list entry of %zu bytes holds %zu "
                      "page numbers",
                      v.mv_size, v.mv_size ? idl[0] : 0);
            break;
        }
        size_t j = 1;
        while (j <= idl[0] && idl[j] >= 2 && idl[j] <= info.me_last_pgno)
            j++;
        if (j <= idl[0]) {
            child_say("lmdb walk: the free list holds page %zu; the last "
                      "page is %zu",
                      idl[j], (size_t)info.me_last_pgno);
            break;
        }
    }
    if (rc && rc != MDB_NOTFOUND)
        child_say("lmdb walk: free list: %s", mdb_err(rc));
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    mdb_env_close(env);
}

typedef struct ackset {
    const pc_note_msg *file[MAX_ACK_PATHS];
    size_t file_at[MAX_ACK_PATHS];
    size_t nfile;
    const pc_note_msg *tree; /* NULL: not checkable */
    size_t tree_at;
    const pc_note_msg *held; /* NULL: none yet */
    size_t held_at;
    unsigned window; /* the run's commit window: the image opens with it */
} ackset;

static void first_diff(const char *a, const char *b, char *out, size_t cap)
{
    size_t line = 1;
    const char *la = a, *lb = b;
    while (*a && *a == *b) {
        if (*a == '\n') {
            line++;
            la = a + 1;
            lb = b + 1;
        }
        a++;
        b++;
    }
    int na = (int)strcspn(la, "\n"), nb = (int)strcspn(lb, "\n");
    snprintf(out, cap, "line %zu: '%.*s' vs '%.*s'", line, na > 200 ? 200 : na,
             la, nb > 200 ? 200 : nb, lb);
}

/* Opens the image as the run had it open: the same commit window. */
static mfs_store *store_open_or_fail(const char *dir, unsigned window)
{
    mfs_store_config cfg;
    mfs_store_config_default(&cfg);
    cfg.commit_window_us = window;
    mfs_store *st;
    int rc = mfs_store_open(&st, dir, &cfg, 0);
    if (rc)
        CHILD_FAIL("reopen: mfs_store_open: %s (%s)", strerror(-rc),
                   mfs_store_strerror(rc));
    return st;
}

/* The FILE and NAME ACKs: lookups and reads only, so they run even when
 * the dump fails. */
static void check_file_acks(mfs_store *st, const ackset *acks)
{
    for (size_t i = 0; i < acks->nfile; i++) {
        const pc_note_msg *m = acks->file[i];
        mfs_attr a;
        int rc = pc_path_lookup(st, m->path, &a);
        if (rc) {
            child_say("lost ACKed data: %s (ACKed at record %zu): lookup: %s",
                      m->path, acks->file_at[i], strerror(-rc));
            continue;
        }
        if (m->kind == PC_NOTE_ACK_NAME) {
            if (!S_ISREG(a.mode))
                child_say("lost ACKed data: %s (ACKed at record %zu as a "
                          "file) reopens as mode %o",
                          m->path, acks->file_at[i], a.mode);
            continue;
        }
        uint64_t h = 0;
        bool same = S_ISREG(a.mode) && a.size == m->size;
        if (same)
            rc = pc_file_hash(st, a.ino, a.size, &h);
        if (!same)
            child_say("lost ACKed data: %s (ACKed at record %zu: %" PRIu64
                      " bytes) reopens as mode %o, %" PRIu64 " bytes",
                      m->path, acks->file_at[i], m->size, a.mode, a.size);
        else if (rc || h != m->hash)
            child_say("lost ACKed data: %s (ACKed at record %zu: %" PRIu64
                      " bytes, hash %016" PRIx64 ") reopens with %s",
                      m->path, acks->file_at[i], m->size, m->hash,
                      rc ? strerror(-rc) : "other content");
    }
}

/* The HELD ACK (the write concern's promise to a peer): the origin's ops
 * up to seq are there, and none of its versions stamped at or below limit
 * waits for a chunk. */
static void check_held_ack(mfs_store *st, const ackset *acks)
{
    const pc_note_msg *m = acks->held;
    mfs_vv d, w;
    if (!m)
        return;
    int rc = mfs_store_vv_held(st, &d, &w);
    if (rc == -EAGAIN && (rc = mfs_store_commit(st, 1)) == 0)
        rc = mfs_store_vv_held(st, &d, &w);
    if (rc) {
        child_say("mfs_store_vv_held: %s", strerror(-rc));
        return;
    }
    uint64_t have = mfs_vv_get(&d, m->origin);
    uint64_t first = mfs_vv_get(&w, m->origin); /* its least wanted stamp */
    if (have < m->seq)
        child_say("lost ACKed data: the ops of %016" PRIx64 " up to %" PRIu64
                  " were held (ACKed at record %zu); the image holds them up "
                  "to %" PRIu64,
                  m->origin, m->seq, acks->held_at, have);
    else if (first && first <= m->limit)
        child_say("lost ACKed data: the versions of %016" PRIx64 " stamped up "
                  "to %016" PRIx64 " were held whole (ACKed at record %zu); "
                  "the image waits for a chunk of one stamped %016" PRIx64,
                  m->origin, m->limit, acks->held_at, first);
    mfs_vv_free(&d);
    mfs_vv_free(&w);
}

/* Runs every check on the image in dir; reports each finding to the
 * parent. Returns only when all checks ran. */
static void check_image(const char *dir, const ackset *acks)
{
    V.phase = "the raw LMDB walk";
    lmdb_walk(dir);

    V.phase = "mfs_store_open";
    mfs_store *st = store_open_or_fail(dir, acks->window);

    V.phase = "the file ACK checks";
    check_file_acks(st, acks);
    V.phase = "the held ACK check";
    check_held_ack(st, acks);

    V.phase = "mfs_store_dump";
    char *d1, *d2;
    size_t n1, n2;
    uint64_t h1, h2;
    int rc = pc_dump(st, &d1, &n1, &h1);
    if (rc)
        CHILD_FAIL("dump: %s", strerror(-rc));
    if (acks->tree && acks->tree->hash != h1)
        child_say("lost ACKed data: the tree ACKed at record %zu (dump hash "
                  "%016" PRIx64 ") reopens as another (dump hash %016" PRIx64
                  ", %zu bytes)",
                  acks->tree_at, acks->tree->hash, h1, n1);

    V.phase = "mfs_store_view_rebuild";
    rc = mfs_store_view_rebuild(st);
    if (rc)
        CHILD_FAIL("mfs_store_view_rebuild: %s", strerror(-rc));
    rc = pc_dump(st, &d2, &n2, &h2);
    if (rc)
        CHILD_FAIL("dump after view rebuild: %s", strerror(-rc));
    if (h1 != h2 || n1 != n2 || memcmp(d1, d2, n1) != 0) {
        char diff[512];
        first_diff(d1, d2, diff, sizeof(diff));
        child_say("inconsistent view: the dump changes after "
                  "mfs_store_view_rebuild: %s",
                  diff);
    }
    free(d1);
    free(d2);

    /* the store takes writes; the free list is the first thing a damaged
     * image trips on */
    V.phase = "a write after the cut";
    mfs_attr a;
    static const char name[] = "pc-after-cut";
    unsigned char buf[20000];
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (unsigned char)(i * 7 + 3);
    rc = mfs_store_mknod(st, MFS_ROOT_INO, name, S_IFREG | 0644, 0, 0, 0, &a);
    ssize_t w = rc ? rc : mfs_store_write(st, a.ino, 0, buf, sizeof(buf));
    rc = w < 0 ? (int)w : mfs_store_fsync(st, a.ino);
    if (rc)
        CHILD_FAIL("write after the cut: %s", strerror(-rc));
    mfs_store_close(st);
    V.phase = "a reopen after a write";
    st = store_open_or_fail(dir, acks->window);
    uint64_t h = 0;
    rc = pc_path_lookup(st, name, &a);
    if (!rc)
        rc = pc_file_hash(st, a.ino, sizeof(buf), &h);
    if (rc || h != pc_hash(PC_HASH_INIT, buf, sizeof(buf)))
        child_say("a file written and fsync'd after the cut reads back "
                  "wrong after a reopen (%s)",
                  rc ? strerror(-rc) : "content differs");
    mfs_store_close(st);
}

/* ---- driving the cuts ---------------------------------------------------- */

typedef struct opts {
    const char *log, *keep, *tmp;
    const char *final[PC_NFILES]; /* --final, --final-wal; NULL: not given */
    const char *packs; /* --packs: the run's STORE/packs, copied in */
    uint64_t seed;
    size_t cuts;
    int modes;     /* bit per mode */
    size_t at;     /* --at: one cut only (0 = random cuts) */
    size_t report; /* failing cuts printed in full; the rest are counted */
    bool verbose;
} opts;

/* Kinds of findings, counted over failing cuts (a cut may show several):
 * the text each finding of that kind starts with. */
static const char *const kind_prefix[] = {"reopen:",
                                          "lost ACKed data",
                                          "lmdb walk",
                                          "crashed",
                                          "hung",
                                          "killed",
                                          "inconsistent view",
                                          "dump",
                                          "mfs_store_view_rebuild",
                                          "write after",
                                          "a file written"};
static const char *const kind_name[] = {"reopen fails",
                                        "ACKed data lost",
                                        "LMDB walk",
                                        "crash",
                                        "hang",
                                        "killed",
                                        "view differs after rebuild",
                                        "dump fails",
                                        "view rebuild fails",
                                        "write after the cut fails",
                                        "write after the cut lost"};
#define NKINDS (sizeof(kind_prefix) / sizeof(kind_prefix[0]))
_Static_assert(sizeof(kind_prefix) == sizeof(kind_name), "one name per kind");

typedef struct totals {
    size_t cuts[2], failed[2], files_checked, names_checked, trees_checked;
    size_t helds_checked;
    size_t reported;
    size_t kind[NKINDS];
} totals;

static void count_kinds(totals *t, const char *msg)
{
    for (size_t k = 0; k < NKINDS; k++) {
        size_t n = strlen(kind_prefix[k]);
        for (const char *p = msg; p; p = strstr(p, "; ")) {
            p += p == msg ? 0 : 2;
            if (strncmp(p, kind_prefix[k], n) == 0) {
                t->kind[k]++;
                break;
            }
        }
    }
}

static int rm_one(const char *path, const struct stat *st, int flag,
                  struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int write_file(const char *path, const unsigned char *p, uint64_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w <= 0) {
            close(fd);
            return -1;
        }
        p += w;
        n -= (uint64_t)w;
    }
    return close(fd);
}

/* Writes the image's files into the existing directory dir under the
 * names the store gives them; a file absent from the image is absent
 * there. Returns 0, or -1 with errno set. */
static int image_write(const image *im, const char *dir)
{
    for (unsigned k = 0; k < PC_NFILES; k++) {
        const imfile *f = &im->f[k];
        char path[DIR_MAX + 64];
        snprintf(path, sizeof(path), "%s/%s", dir, pc_file_name(k));
        if (f->exists ? write_file(path, f->buf, f->size) < 0
                      : unlink(path) < 0 && errno != ENOENT)
            return -1;
    }
    return 0;
}

/* What the image holds of each file, for the report of a cut. */
static void image_describe(const sim *s, const image *im, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (unsigned k = 0; k < PC_NFILES && n < cap; k++) {
        const imfile *f = &im->f[k];
        int w = f->exists
                    ? snprintf(out + n, cap - n,
                               "%s%s: last full sync at record %zu, %zu pages "
                               "dirty, %zu written back, %" PRIu64 " bytes",
                               k ? "; " : "", pc_file_name(k),
                               s->f[k].last_sync, f->dirty, f->written, f->size)
                    : snprintf(out + n, cap - n, "%s%s: absent", k ? "; " : "",
                               pc_file_name(k));
        if (w < 0)
            break;
        n += (size_t)w;
    }
}

/* Copies every file of from into the new directory to. */
static int copy_dir(const char *from, const char *to)
{
    DIR *d = opendir(from);
    if (!d)
        return errno == ENOENT ? 0 : -1; /* no packs: nothing to copy */
    if (mkdir(to, 0700) < 0) {
        closedir(d);
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    unsigned char *buf = malloc(1 << 20);
    while (rc == 0 && buf && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char a[DIR_MAX + 300], b[DIR_MAX + 300];
        snprintf(a, sizeof(a), "%s/%s", from, e->d_name);
        snprintf(b, sizeof(b), "%s/%s", to, e->d_name);
        int in = open(a, O_RDONLY | O_CLOEXEC);
        int out = open(b, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        ssize_t n = 0;
        while (in >= 0 && out >= 0 && (n = read(in, buf, 1 << 20)) > 0)
            if (write(out, buf, (size_t)n) != n)
                n = -1;
        if (in < 0 || out < 0 || n < 0)
            rc = -1;
        if (in >= 0)
            close(in);
        if (out >= 0 && close(out) < 0)
            rc = -1;
    }
    if (!buf)
        rc = -1;
    free(buf);
    closedir(d);
    return rc;
}

/* Runs the checks of one image in a child. Returns 0 pass, 1 fail (msg
 * says why), -1 harness error. Chunk bytes of pack files (store/pack.c)
 * come from the end of the run (packs): a pack is only appended to, and
 * its bytes are synced before any commit that refers to them, so the
 * bytes every image's references name are those of the final files. The
 * log models data.mdb and intent.log, not the packs; bytes past a pack's
 * committed size are truncated when the image opens, as after a real
 * cut. */
static int run_child(const char *dir, const image *im, const ackset *acks,
                     const char *packs, char *msg, size_t cap)
{
    char pdir[DIR_MAX + 16];
    snprintf(pdir, sizeof(pdir), "%s/packs", dir);
    if (mkdir(dir, 0700) < 0 || image_write(im, dir) < 0 ||
        (packs && copy_dir(packs, pdir) < 0)) {
        snprintf(msg, cap, "cannot write the image to %s: %s", dir,
                 strerror(errno));
        return -1;
    }
    int pfd[2];
    if (pipe(pfd) < 0)
        return -1;
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        /* dies with us: a killed checker leaves no check running */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() == 1)
            _exit(1);
        close(pfd[0]);
        V.fd = pfd[1];
        V.phase = "setup";
        signal(SIGBUS, on_fault);
        signal(SIGSEGV, on_fault);
        signal(SIGABRT, on_fault);
        signal(SIGFPE, on_fault);
        signal(SIGALRM, on_fault);
        alarm(CHILD_TIMEOUT_S);
        check_image(dir, acks);
        _exit(V.findings ? 1 : 0);
    }
    close(pfd[1]);
    size_t len = 0;
    for (;;) {
        ssize_t r = read(pfd[0], msg + len, cap - 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
        if (len == cap - 1)
            break;
    }
    msg[len] = '\0';
    close(pfd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFSIGNALED(status) && !len)
        snprintf(msg, cap, "%s (signal %d)",
                 WTERMSIG(status) == SIGALRM ? "hung for 60 s" : "killed",
                 WTERMSIG(status));
    else if (!len)
        snprintf(msg, cap, "the check exited %d without a reason",
                 WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 1;
}

static void ackset_from(ackset *as, const ackstate *a)
{
    memset(as, 0, sizeof(*as));
    for (size_t k = 0; k < a->nfile; k++)
        if (a->file_valid[k]) {
            as->file[as->nfile] = &a->file[k];
            as->file_at[as->nfile++] = a->file_at[k];
        }
    if (a->tree_valid) {
        as->tree = &a->tree;
        as->tree_at = a->tree_at;
    }
    if (a->held_valid) {
        as->held = &a->held;
        as->held_at = a->held_at;
    }
}

static int do_cut(const opts *o, const pclog *l, const sim *s,
                  const ackstate *a, const cut *c, image *im, totals *t,
                  const char *tmp)
{
    ackset as;
    ackset_from(&as, a);
    as.window = (unsigned)l->window;
    image_build(s, c, o->seed, im);
    char dir[DIR_MAX], msg[DIR_MAX + 2048];
    snprintf(dir, sizeof(dir), "%s/cut-%zu-%s", tmp, c->at, mode_name[c->mode]);
    int rc = run_child(dir, im, &as, o->packs, msg, sizeof(msg));
    t->cuts[c->mode]++;
    for (size_t i = 0; i < as.nfile; i++) {
        if (as.file[i]->kind == PC_NOTE_ACK_FILE)
            t->files_checked++;
        else
            t->names_checked++;
    }
    t->trees_checked += as.tree != NULL;
    t->helds_checked += as.held != NULL;
    if (rc < 0) {
        fprintf(stderr, "pc_check: %s\n", msg);
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        return -1;
    }
    if (rc || o->verbose) {
        bool full = rc == 0 || t->reported < o->report;
        char files[512];
        image_describe(s, im, files, sizeof(files));
        if (full)
            printf("%s cut at record %zu/%zu (mode %s, window %" PRIu64
                   " us): %s; checked %zu file/name ACKs%s%s%s\n",
                   rc ? "FAIL" : "ok  ", c->at, l->n, mode_name[c->mode],
                   l->window, files, as.nfile, as.tree ? " + the tree ACK" : "",
                   rc ? ": " : "", rc ? msg : "");
        if (rc && full) {
            printf("     replay: pc_check --log %s --final %s%s%s --seed "
                   "%" PRIu64 " --mode %s --at %zu --keep DIR\n",
                   o->log, o->final[PC_FILE_DATA],
                   o->final[PC_FILE_WAL] ? " --final-wal " : "",
                   o->final[PC_FILE_WAL] ? o->final[PC_FILE_WAL] : "", o->seed,
                   mode_name[c->mode], c->at);
            t->reported++;
        }
    }
    if (rc) {
        t->failed[c->mode]++;
        count_kinds(t, msg);
        if (o->keep) {
            char to[DIR_MAX + 64];
            snprintf(to, sizeof(to), "%s/cut-%zu-%s", o->keep, c->at,
                     mode_name[c->mode]);
            mkdir(o->keep, 0755);
            mkdir(to, 0755);
            if (image_write(im, to) == 0)
                printf("     image kept: %s (the store files in it)\n", to);
        }
    }
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static int cut_cmp(const void *a, const void *b)
{
    const cut *x = a, *y = b;
    if (x->at != y->at)
        return x->at < y->at ? -1 : 1;
    return x->mode - y->mode;
}

/* The flag that names the file the workload left, per enum pc_file. */
static const char *const final_flag[PC_NFILES] = {"--final", "--final-wal"};

/* File `file` replayed to the end of the log must be the file the workload
 * left at path (NULL: not given); a file the log never opened must not
 * exist. */
static int check_final(const pclog *l, const simfile *f, unsigned file,
                       const char *path)
{
    const char *name = pc_file_name(file);
    if (!path)
        return l->opened[file] ? refuse("the log writes %s: name the file "
                                        "the workload left with %s",
                                        name, final_flag[file])
                               : 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && !l->opened[file])
        return 0;
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return refuse("cannot open %s: %s", path, strerror(e));
    }
    int rc = 0;
    if (!l->opened[file]) {
        rc = refuse("%s exists, but the log never opened %s: the shim "
                    "missed it",
                    path, name);
    } else if ((uint64_t)st.st_size != f->csize) {
        rc = refuse("%s has %" PRIu64 " bytes, the log replays %s to %" PRIu64
                    ": the shim missed a write",
                    path, (uint64_t)st.st_size, name, f->csize);
    } else if (st.st_size) {
        unsigned char *m =
            mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            rc = refuse("mmap %s: %s", path, strerror(errno));
        } else {
            for (uint64_t p = 0; p * PC_PAGE < f->csize && !rc; p++) {
                uint64_t n = f->csize - p * PC_PAGE;
                n = n < PC_PAGE ? n : PC_PAGE;
                if (memcmp(m + p * PC_PAGE, f->cache + p * PC_PAGE, n) != 0)
                    rc = refuse("%s differs from the replayed log of %s in "
                                "page %" PRIu64 ": the shim missed a write",
                                path, name, p);
            }
            munmap(m, (size_t)st.st_size);
        }
    }
    close(fd);
    return rc;
}

/* The whole log replayed must be the files the workload left behind. */
static int check_complete(const pclog *l, const char *const *final)
{
    sim s;
    int rc = sim_init(&s, l) ? refuse("out of memory") : 0;
    for (size_t i = 0; i < l->n && !rc; i++)
        if (sim_apply(&s, i))
            rc = refuse("out of memory");
    for (unsigned k = 0; k < PC_NFILES && !rc; k++)
        rc = check_final(l, &s.f[k], k, final[k]);
    sim_free(&s);
    return rc;
}

/* A cut point in (first ACK, n]. One in four is where the oracle has the
 * most to say: just after an ACK (the tree ACK is then checkable), or just
 * before a sync (the most unsynced writes). The rest are uniform. */
static size_t pick_cut(const pclog *l, rng *r)
{
    size_t span = l->n - l->first_ack;
    size_t at = l->first_ack + 1 + rng_next(r) % span;
    uint64_t kind = rng_next(r) % 8;
    for (size_t i = at; kind < 2 && i < l->n; i++) {
        const rec *x = &l->r[i];
        if (kind == 0 && x->type == PC_REC_SYNC)
            return i; /* the records before the sync happened, not it */
        if (kind == 1 && x->note >= 0 &&
            l->notes[x->note].kind == PC_NOTE_ACK_TREE)
            return i + 1;
    }
    return at;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: pc_check --log LOG --final DATA.MDB [--final-wal "
            "INTENT.LOG]\n"
            "                [--cuts N] [--seed N] [--mode drop|torn|both] "
            "[--at REC]\n"
            "                [--keep DIR] [--packs DIR] [--report N] "
            "[--tmp DIR]\n"
            "                [--verbose]\n");
    return 2;
}

static int parse_opts(opts *o, int argc, char **argv)
{
    *o = (opts){.cuts = 100,
                .seed = 1,
                .modes = 3,
                .tmp = "/var/tmp",
                .report = MAX_REPORTED};
    for (int k = 1; k < argc; k++) {
        const char *f = argv[k];
        if (strcmp(f, "--verbose") == 0) {
            o->verbose = true;
            continue;
        }
        if (k + 1 >= argc) {
            fprintf(stderr, "pc_check: '%s' needs a value\n", f);
            return -1;
        }
        const char *v = argv[++k];
        char *end;
        unsigned long long num = strtoull(v, &end, 10);
        bool isnum = *v && !*end;
        if (strcmp(f, "--log") == 0)
            o->log = v;
        else if (strcmp(f, final_flag[PC_FILE_DATA]) == 0)
            o->final[PC_FILE_DATA] = v;
        else if (strcmp(f, final_flag[PC_FILE_WAL]) == 0)
            o->final[PC_FILE_WAL] = v;
        else if (strcmp(f, "--keep") == 0)
            o->keep = v;
        else if (strcmp(f, "--packs") == 0)
            o->packs = v;
        else if (strcmp(f, "--tmp") == 0)
            o->tmp = v;
        else if (strcmp(f, "--mode") == 0) {
            o->modes = strcmp(v, "drop") == 0   ? 1
                       : strcmp(v, "torn") == 0 ? 2
                       : strcmp(v, "both") == 0 ? 3
                                                : 0;
            if (!o->modes) {
                fprintf(stderr, "pc_check: bad mode '%s'\n", v);
                return -1;
            }
        } else if (isnum && strcmp(f, "--cuts") == 0)
            o->cuts = (size_t)num;
        else if (isnum && strcmp(f, "--seed") == 0)
            o->seed = num;
        else if (isnum && strcmp(f, "--at") == 0)
            o->at = (size_t)num;
        else if (isnum && strcmp(f, "--report") == 0)
            o->report = (size_t)num;
        else {
            fprintf(stderr, "pc_check: bad flag or value '%s %s'\n", f, v);
            return -1;
        }
    }
    if (!o->log || !o->final[PC_FILE_DATA]) {
        fprintf(stderr, "pc_check: --log and --final are required\n");
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    opts o;
    if (parse_opts(&o, argc, argv))
        return usage();
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);

    pclog l = {0};
    if (log_load(&l, o.log) || check_complete(&l, o.final))
        return 2;

    /* the cuts: each a record count in (first ACK, n], sorted */
    size_t ncuts = 0;
    cut *cuts = calloc(o.cuts * 2 + 2, sizeof(*cuts));
    if (!cuts)
        return 2;
    rng r = {o.seed};
    for (int m = 0; m < 2; m++) {
        if (!(o.modes & (1 << m)))
            continue;
        if (o.at) {
            if (o.at <= l.first_ack || o.at > l.n) {
                fprintf(stderr, "pc_check: --at must be in (%zu, %zu]\n",
                        l.first_ack, l.n);
                return 2;
            }
            cuts[ncuts++] = (cut){o.at, m};
            continue;
        }
        for (size_t i = 0; i < o.cuts; i++)
            cuts[ncuts++] = (cut){pick_cut(&l, &r), m};
    }
    qsort(cuts, ncuts, sizeof(*cuts), cut_cmp);
    size_t uniq = 0; /* a cut drawn twice builds the same image: once */
    for (size_t i = 0; i < ncuts; i++)
        if (!uniq || cut_cmp(&cuts[uniq - 1], &cuts[i]) != 0)
            cuts[uniq++] = cuts[i];
    ncuts = uniq;

    char tmp[TMP_MAX_LEN];
    if (strlen(o.tmp) > TMP_MAX_LEN - 32 ||
        (o.keep && strlen(o.keep) > TMP_MAX_LEN)) {
        refuse("--tmp or --keep: a path longer than %d bytes",
               TMP_MAX_LEN - 32);
        return 2;
    }
    snprintf(tmp, sizeof(tmp), "%s/meshfs-pccheck-XXXXXX", o.tmp);
    if (!mkdtemp(tmp)) {
        fprintf(stderr, "pc_check: mkdtemp %s: %s\n", tmp, strerror(errno));
        return 2;
    }
    sim s;
    static ackstate acks; /* large; zeroed */
    image im = {0};
    totals t = {0};
    int rc = sim_init(&s, &l) ? -1 : 0;
    for (unsigned k = 0; k < PC_NFILES && !rc; k++)
        if (!(im.f[k].buf = malloc(s.f[k].cap)))
            rc = -1;
    size_t next = 0;
    for (size_t i = 0; i <= l.n && !rc; i++) {
        while (next < ncuts && cuts[next].at == i && !rc)
            rc = do_cut(&o, &l, &s, &acks, &cuts[next++], &im, &t, tmp);
        if (i == l.n || rc)
            break;
        rc = sim_apply(&s, i);
        if (l.r[i].note >= 0)
            ack_note(&acks, &l.notes[l.r[i].note], i);
    }
    nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) +
                  (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("pc_check: %s (workload seed %" PRIu64 ", commit window %" PRIu64
           " us): %zu records, %zu cuts (drop %zu, torn %zu), "
           "failed: drop %zu, torn %zu; ACKs checked: %zu file, %zu name, "
           "%zu tree, %zu held; %.1f s\n",
           o.log, l.seed, l.window, l.n, t.cuts[0] + t.cuts[1], t.cuts[0],
           t.cuts[1], t.failed[0], t.failed[1], t.files_checked,
           t.names_checked, t.trees_checked, t.helds_checked, secs);
    if (t.failed[0] + t.failed[1]) {
        printf("pc_check: failing cuts by finding:");
        for (size_t k = 0; k < NKINDS; k++)
            if (t.kind[k])
                printf(" %s %zu;", kind_name[k], t.kind[k]);
        printf("\n");
    }
    for (unsigned k = 0; k < PC_NFILES; k++)
        free(im.f[k].buf);
    sim_free(&s);
    free(cuts);
    free(l.r);
    free(l.notes);
    if (l.map)
        munmap(l.map, l.size);
    if (rc)
        return 2;
    return t.failed[0] + t.failed[1] ? 1 : 0;
}
