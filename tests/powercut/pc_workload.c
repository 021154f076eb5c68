/*
 * pc_workload.c - the write-heavy store workload of the power-cut test. Run
 * under LD_PRELOAD=pc_preload.so (which logs every write and sync to the
 * store's data.mdb and intent.log), it creates a new store and drives it
 * with a sequence of creates, overwrites, appends, patches, truncates,
 * chmods, renames (of files and of directories), unlinks and publishes, all
 * chosen from a seed.
 * Before each op it notes "OP" with the paths the op may change; every few
 * ops it calls mfs_store_fsync on a file (every eighth time, publishes all
 * files and fsyncs the store) and, once that returned, notes what fsync
 * promised: "ACK FILE" (path, size, content hash) for every file with no
 * unpublished writes, "ACK NAME" for the others, and "ACK TREE" (hash of
 * the whole dump) when no file has unpublished writes. pc_check later
 * holds the store to those ACKs at simulated cuts.
 *
 * A peer's store beside it (DIR-peer, which the shim does not watch) makes
 * changes under r/ whose ops this store applies as replication would
 * bring them, with all, some or none of the chunks they need (op_remote);
 * then the workload notes what the store says it holds of the peer
 * durably (mfs_store_vv_held, what the write concern's HELD message
 * reports): "ACK HELD" (the peer's ops up to seq, and whole every version
 * of the peer stamped at or below limit). Half the time it first asks
 * for them to be held as a member asked for acks does
 * (mfs_store_hold_soon: one record of the intent log) and waits until
 * the store says so.
 *
 * It keeps its own model of every file and checks the live store against
 * it before each ACK, so an ACK always states what the store really held.
 * It uses the public store API only, and must never note an ACK for
 * anything fsync did not return 0 for.
 *
 * Usage: pc_workload DIR [--seed N] [--ops N] [--commit-window US]
 * Exit: 0 done, 1 the store misbehaved, 2 usage or harness error.
 */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pc_common.h"
#include "pc_log.h"
#include "store.h"

#define NDIRS 4                /* directories at the root, always present */
#define NDIRNAMES 8            /* the names they move between: d0..d7 */
#define NFILES 12              /* file name slots per directory: f0..f11 */
#define MAX_FILE (200u * 1024) /* content up to ~3 chunks */
#define T0_MS 1700000000000ull
#define NPEERFILES 6 /* the peer's files: r/p0..r/p5 */

typedef struct wfile {
    bool live;
    bool dirty; /* written since it was last published */
    uint64_t ino;
    unsigned char *data; /* the model: what a read must return */
    size_t size;
    uint32_t mode;
} wfile;

typedef struct wl {
    mfs_store *s;
    pc_note_fn note;
    uint64_t rng;
    uint64_t clock_ms;
    uint64_t seq;       /* ops noted so far */
    int dirname[NDIRS]; /* which of d0..d7 dir i is called now */
    uint64_t dirino[NDIRS];
    wfile f[NDIRS][NFILES];
    uint64_t acks;
    mfs_store *peer; /* DIR-peer: its ops come in by op_remote */
    /* the peer's ops applied since the last durable commit: fsync makes
     * this node's own changes durable (the intent log), not a peer's,
     * which the peer still holds and sends again after a power cut; the
     * whole tree is ACKed only after a durable commit then */
    bool remote_unsynced;
    uint64_t peer_id, rdir, rfile[NPEERFILES];
} wl;

static uint64_t rnd(wl *w)
{
    /* xorshift64* */
    w->rng ^= w->rng >> 12;
    w->rng ^= w->rng << 25;
    w->rng ^= w->rng >> 27;
    return w->rng * 0x2545f4914f6cdd1dull;
}

static uint64_t below(wl *w, uint64_t n)
{
    return rnd(w) % n;
}

static uint64_t clock_fn(void *arg)
{
    return ((wl *)arg)->clock_ms;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "pc_workload: %s: %s\n", what, strerror(-rc));
    exit(1);
}

static void fpath(const wl *w, int d, int i, char *buf, size_t cap)
{
    snprintf(buf, cap, "d%d/f%d", w->dirname[d], i);
}

static void note(wl *w, const pc_note_msg *m)
{
    char buf[PC_NOTE_MAX];
    if (pc_note_format(buf, sizeof(buf), m) < 0 || w->note(buf) != 0) {
        fprintf(stderr, "pc_workload: cannot log a note\n");
        exit(2);
    }
}

/* Notes that op `what` is about to change the named paths. */
static void note_op(wl *w, const char *what, const char *a, const char *b)
{
    pc_note_msg m = {.kind = PC_NOTE_OP, .seq = ++w->seq};
    snprintf(m.what, sizeof(m.what), "%s", what);
    if (a)
        snprintf(m.touched[m.ntouched++], PC_PATH_MAX, "%s", a);
    if (b)
        snprintf(m.touched[m.ntouched++], PC_PATH_MAX, "%s", b);
    note(w, &m);
    w->clock_ms += 1 + below(w, 5);
}

/* Deterministic bytes: mostly random, sometimes runs (compressible and
 * deduplicated chunks are cases too). */
static void fill(wl *w, unsigned char *p, size_t n)
{
    if (below(w, 4) == 0) {
        memset(p, (int)below(w, 256), n);
        return;
    }
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(rnd(w) >> 56);
}

static size_t pick_len(wl *w, size_t max)
{
    switch (below(w, 4)) {
    case 0:
        return (size_t)below(w, 512);
    case 1:
        return (size_t)below(w, 8192);
    default:
        return (size_t)below(w, max + 1);
    }
}

/* A random live file, or -1. */
static int pick_live(wl *w, int *d, int *i)
{
    int n = 0;
    for (int a = 0; a < NDIRS; a++)
        for (int b = 0; b < NFILES; b++)
            n += w->f[a][b].live;
    if (!n)
        return -1;
    int k = (int)below(w, (uint64_t)n);
    for (int a = 0; a < NDIRS; a++)
        for (int b = 0; b < NFILES; b++)
            if (w->f[a][b].live && k-- == 0) {
                *d = a;
                *i = b;
                return 0;
            }
    return -1;
}

static void model_write(wfile *f, size_t off, const unsigned char *p, size_t n)
{
    if (off + n > f->size) {
        f->data = realloc(f->data, off + n);
        if (!f->data)
            die("realloc", -ENOMEM);
        memset(f->data + f->size, 0, off + n - f->size);
        f->size = off + n;
    }
    memcpy(f->data + off, p, n);
}

static void model_resize(wfile *f, size_t size)
{
    if (size > f->size) {
        f->data = realloc(f->data, size);
        if (!f->data)
            die("realloc", -ENOMEM);
        memset(f->data + f->size, 0, size - f->size);
    }
    f->size = size;
}

static void store_write(wl *w, wfile *f, size_t off, size_t n)
{
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf)
        die("malloc", -ENOMEM);
    fill(w, buf, n);
    if (n) {
        ssize_t r = mfs_store_write(w->s, f->ino, off, buf, n);
        if (r != (ssize_t)n)
            die("mfs_store_write", r < 0 ? (int)r : -EIO);
        f->dirty = true;
    }
    model_write(f, off, buf, n);
    free(buf);
}

static void store_truncate(wl *w, wfile *f, size_t size)
{
    mfs_setattr sa = {.mask = MFS_SET_SIZE, .size = size};
    mfs_attr a;
    int rc = mfs_store_setattr(w->s, f->ino, &sa, &a);
    if (rc)
        die("mfs_store_setattr(size)", rc);
    model_resize(f, size);
    f->dirty = true; /* a size change is published like a write */
}

static void op_create(wl *w)
{
    int d = (int)below(w, NDIRS), i = (int)below(w, NFILES);
    wfile *f = &w->f[d][i];
    if (f->live)
        return;
    char p[PC_PATH_MAX], name[16];
    fpath(w, d, i, p, sizeof(p));
    snprintf(name, sizeof(name), "f%d", i);
    note_op(w, "create", p, NULL);
    mfs_attr a;
    int rc =
        mfs_store_mknod(w->s, w->dirino[d], name, S_IFREG | 0644, 0, 0, 0, &a);
    if (rc)
        die("mfs_store_mknod", rc);
    *f = (wfile){.live = true, .ino = a.ino, .mode = 0644};
    store_write(w, f, 0, pick_len(w, MAX_FILE));
}

static void op_content(wl *w)
{
    int d, i;
    if (pick_live(w, &d, &i))
        return;
    wfile *f = &w->f[d][i];
    char p[PC_PATH_MAX];
    fpath(w, d, i, p, sizeof(p));
    switch (below(w, 4)) {
    case 0: { /* overwrite with new content, new size */
        size_t n = pick_len(w, MAX_FILE);
        note_op(w, "overwrite", p, NULL);
        store_write(w, f, 0, n);
        if (n < f->size)
            store_truncate(w, f, n);
        break;
    }
    case 1: /* append */
        note_op(w, "append", p, NULL);
        store_write(w, f, f->size, pick_len(w, MAX_FILE / 4));
        break;
    case 2: { /* patch a few bytes inside, maybe past the end (a hole) */
        size_t off = (size_t)below(w, f->size + 4096);
        note_op(w, "patch", p, NULL);
        store_write(w, f, off, 1 + (size_t)below(w, 6000));
        break;
    }
    default: /* truncate, shorter or longer */
        note_op(w, "truncate", p, NULL);
        store_truncate(w, f, (size_t)below(w, f->size + f->size / 2 + 4096));
        break;
    }
}

static void op_chmod(wl *w)
{
    int d, i;
    if (pick_live(w, &d, &i))
        return;
    wfile *f = &w->f[d][i];
    char p[PC_PATH_MAX];
    fpath(w, d, i, p, sizeof(p));
    note_op(w, "chmod", p, NULL);
    mfs_setattr sa = {.mask = MFS_SET_MODE, .mode = 0600 | (f->mode ^ 044)};
    mfs_attr a;
    int rc = mfs_store_setattr(w->s, f->ino, &sa, &a);
    if (rc)
        die("mfs_store_setattr(mode)", rc);
    f->mode = sa.mode;
}

static void op_rename(wl *w)
{
    int d, i;
    if (pick_live(w, &d, &i))
        return;
    int d2 = (int)below(w, NDIRS), i2 = (int)below(w, NFILES);
    if (d2 == d && i2 == i)
        return;
    char p[PC_PATH_MAX], q[PC_PATH_MAX], n1[16], n2[16];
    fpath(w, d, i, p, sizeof(p));
    fpath(w, d2, i2, q, sizeof(q));
    snprintf(n1, sizeof(n1), "f%d", i);
    snprintf(n2, sizeof(n2), "f%d", i2);
    note_op(w, "rename", p, q);
    int rc = mfs_store_rename(w->s, w->dirino[d], n1, w->dirino[d2], n2, 0);
    if (rc)
        die("mfs_store_rename", rc);
    wfile *to = &w->f[d2][i2];
    free(to->data); /* replaced, as rename(2) does */
    *to = w->f[d][i];
    w->f[d][i] = (wfile){0};
}

static void op_unlink(wl *w)
{
    int d, i;
    if (pick_live(w, &d, &i))
        return;
    char p[PC_PATH_MAX], name[16];
    fpath(w, d, i, p, sizeof(p));
    snprintf(name, sizeof(name), "f%d", i);
    note_op(w, "unlink", p, NULL);
    int rc = mfs_store_unlink(w->s, w->dirino[d], name);
    if (rc)
        die("mfs_store_unlink", rc);
    mfs_store_forget(w->s, w->f[d][i].ino);
    free(w->f[d][i].data);
    w->f[d][i] = (wfile){0};
}

static void op_rename_dir(wl *w)
{
    int d = (int)below(w, NDIRS), to = (int)below(w, NDIRNAMES);
    for (int k = 0; k < NDIRS; k++)
        if (w->dirname[k] == to)
            return; /* name in use */
    char p[PC_PATH_MAX], q[PC_PATH_MAX];
    snprintf(p, sizeof(p), "d%d", w->dirname[d]);
    snprintf(q, sizeof(q), "d%d", to);
    note_op(w, "renamedir", p, q);
    int rc = mfs_store_rename(w->s, MFS_ROOT_INO, p, MFS_ROOT_INO, q, 0);
    if (rc)
        die("mfs_store_rename(dir)", rc);
    w->dirname[d] = to;
}

static void op_publish(wl *w)
{
    int d, i;
    if (pick_live(w, &d, &i))
        return;
    note_op(w, "publish", NULL, NULL);
    int rc = mfs_store_publish(w->s, w->f[d][i].ino);
    if (rc)
        die("mfs_store_publish", rc);
    w->f[d][i].dirty = false;
}

/* Applies to `to` the ops of `from` it lacks, as a peer's batch. */
static void copy_ops(mfs_store *from, mfs_store *to)
{
    static uint8_t buf[4u << 20];
    for (;;) {
        mfs_vv have;
        int rc = mfs_store_vv(to, &have);
        if (rc)
            die("mfs_store_vv", rc);
        ssize_t n = mfs_store_ops_since(from, &have, buf, sizeof(buf));
        mfs_vv_free(&have);
        if (n < 0)
            die("mfs_store_ops_since", (int)n);
        if (n == 0)
            return;
        rc = mfs_store_apply(to, buf, (size_t)n, NULL);
        if (rc)
            die("mfs_store_apply", rc);
    }
}

/* Notes what the store holds of the peer durably and whole, if it says
 * (the first ask only starts keeping it: the next commit or sync has it). */
static void note_held(wl *w)
{
    mfs_vv d, wanted;
    int rc = mfs_store_vv_held(w->s, &d, &wanted);
    if (rc == -EAGAIN)
        return;
    if (rc)
        die("mfs_store_vv_held", rc);
    pc_note_msg m = {.kind = PC_NOTE_ACK_HELD, .origin = w->peer_id};
    m.seq = mfs_vv_get(&d, w->peer_id);
    uint64_t cut = mfs_vv_get(&wanted, w->peer_id);
    mfs_vv_free(&d);
    mfs_vv_free(&wanted);
    if (!m.seq)
        return;
    if (cut)
        m.limit = cut - 1;
    else if ((rc = mfs_store_op_hlc(w->peer, w->peer_id, m.seq, &m.limit)))
        die("mfs_store_op_hlc", rc);
    note(w, &m);
    w->acks++;
}

/* As a member asked for acks: everything applied made durable by the
 * commit thread (one record of the intent log, or a sync), waited for
 * until the store says it holds the peer's ops (up to 5 s). */
static void hold_wait(wl *w)
{
    mfs_vv v, d, wanted;
    int rc = mfs_store_vv(w->s, &v);
    if (rc)
        die("mfs_store_vv", rc);
    uint64_t want = mfs_vv_get(&v, w->peer_id);
    mfs_vv_free(&v);
    mfs_store_hold_soon(w->s);
    for (int i = 0; i < 5000; i++) {
        rc = mfs_store_vv_held(w->s, &d, &wanted);
        if (rc && rc != -EAGAIN)
            die("mfs_store_vv_held", rc);
        if (!rc) {
            uint64_t got = mfs_vv_get(&d, w->peer_id);
            mfs_vv_free(&d);
            mfs_vv_free(&wanted);
            if (got >= want)
                return;
        }
        usleep(1000);
    }
    die("mfs_store_hold_soon: not held after 5 s", -ETIMEDOUT);
}

/* The peer writes one of its files (new content, 1 B to ~200 kB) and
 * publishes it; its ops come here, with all, some or none of the chunks
 * they need (the rest stay wanted), as replication would bring them. */
static void op_remote(wl *w)
{
    static unsigned char buf[MAX_FILE];
    int k = (int)below(w, NPEERFILES), rc;
    note_op(w, "remote", "r", NULL);
    if (!w->rfile[k]) {
        char name[8];
        mfs_attr a;
        snprintf(name, sizeof(name), "p%d", k);
        rc = mfs_store_mknod(w->peer, w->rdir, name, S_IFREG | 0644, 0, 0, 0,
                             &a);
        if (rc)
            die("peer: mfs_store_mknod", rc);
        w->rfile[k] = a.ino;
    }
    size_t len = 1 + pick_len(w, MAX_FILE - 1);
    fill(w, buf, len);
    mfs_setattr sa = {.mask = MFS_SET_SIZE, .size = 0};
    mfs_attr a;
    rc = mfs_store_setattr(w->peer, w->rfile[k], &sa, &a);
    if (!rc &&
        mfs_store_write(w->peer, w->rfile[k], 0, buf, len) != (ssize_t)len)
        rc = -EIO;
    if (!rc)
        rc = mfs_store_publish(w->peer, w->rfile[k]);
    if (rc)
        die("peer: write", rc);
    copy_ops(w->peer, w->s);
    w->remote_unsynced = true;
    uint8_t want[64 * MFS_HASH_LEN];
    ssize_t n = mfs_store_chunks_wanted(w->s, want, 64);
    uint64_t keep = below(w, 3); /* 0: all come, 1: some, 2: none yet */
    for (ssize_t i = 0; i < n && keep != 2; i++) {
        const uint8_t *h = want + (size_t)i * MFS_HASH_LEN;
        if (keep == 1 && below(w, 2))
            continue;
        ssize_t got = mfs_store_chunk_get(w->peer, h, buf, sizeof(buf));
        if (got < 0)
            die("peer: mfs_store_chunk_get", (int)got);
        rc = mfs_store_chunk_put(w->s, h, buf, (size_t)got);
        if (rc)
            die("mfs_store_chunk_put", rc);
    }
    if (below(w, 2))
        hold_wait(w);
    note_held(w);
}

/* The live store must read back what the model says. */
static void verify(wl *w, int d, int i, uint64_t *hash)
{
    wfile *f = &w->f[d][i];
    char p[PC_PATH_MAX];
    fpath(w, d, i, p, sizeof(p));
    mfs_attr a;
    int rc = pc_path_lookup(w->s, p, &a);
    if (rc)
        die("lookup of a live file", rc);
    uint64_t h;
    rc = pc_file_hash(w->s, a.ino, f->size, &h);
    if (rc)
        die("read of a live file", rc);
    *hash = pc_hash(PC_HASH_INIT, f->data, f->size);
    if (a.ino != f->ino || a.size != f->size || h != *hash) {
        fprintf(stderr,
                "pc_workload: %s: store has ino %" PRIu64 " size %" PRIu64
                ", the model ino %" PRIu64 " size %zu (%s content)\n",
                p, a.ino, a.size, f->ino, f->size,
                h == *hash ? "same" : "different");
        exit(1);
    }
}

/*
 * fsync one file (or, with `all`, publish every file and fsync the store),
 * then note what that made durable. What fsync promises, and all that is
 * ACKed: the fsync'd file's content; every file published before it (a
 * publish is an op, committed like the others); every name (namespace ops
 * commit like the others). Unpublished writes to other files are not
 * promised (a local filesystem does not promise them either), so a dirty
 * file gets only an ACK of its name, and the whole tree is ACKed only
 * when no file is dirty.
 */
static void op_fsync(wl *w, bool all)
{
    int d, i;
    bool file = !all && pick_live(w, &d, &i) == 0;
    int rc;
    if (all) {
        note_op(w, "publishall", NULL, NULL);
        rc = mfs_store_publish_all(w->s, 0);
        if (rc)
            die("mfs_store_publish_all", rc);
        for (int a = 0; a < NDIRS; a++)
            for (int b = 0; b < NFILES; b++)
                w->f[a][b].dirty = false;
    }
    rc = mfs_store_fsync(w->s, file ? w->f[d][i].ino : 0);
    if (rc)
        die("mfs_store_fsync", rc);
    if (file)
        w->f[d][i].dirty = false;
    bool any_dirty = false;
    for (int a = 0; a < NDIRS; a++) {
        for (int b = 0; b < NFILES; b++) {
            wfile *f = &w->f[a][b];
            if (!f->live)
                continue;
            pc_note_msg m = {.kind =
                                 f->dirty ? PC_NOTE_ACK_NAME : PC_NOTE_ACK_FILE,
                             .size = f->size};
            fpath(w, a, b, m.path, sizeof(m.path));
            if (!f->dirty)
                verify(w, a, b, &m.hash);
            any_dirty |= f->dirty;
            note(w, &m);
            w->acks++;
        }
    }
    if (any_dirty)
        return;
    if (w->remote_unsynced && (rc = mfs_store_commit(w->s, 1)))
        die("mfs_store_commit", rc);
    w->remote_unsynced = false;
    pc_note_msg t = {.kind = PC_NOTE_ACK_TREE};
    char *text;
    size_t len;
    rc = pc_dump(w->s, &text, &len, &t.hash);
    if (rc)
        die("mfs_store_dump", rc);
    free(text);
    note(w, &t);
    w->acks++;
    if (w->peer)
        note_held(w);
}

static int usage(void)
{
    fprintf(stderr, "usage: pc_workload DIR [--seed N] [--ops N] "
                    "[--commit-window US]\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    const char *dir = argv[1];
    uint64_t seed = 1, nops = 300;
    unsigned window = 0;
    for (int k = 2; k < argc; k++) {
        char *end;
        if (k + 1 >= argc)
            return usage();
        unsigned long long v = strtoull(argv[k + 1], &end, 10);
        if (*end || !*argv[k + 1]) {
            fprintf(stderr, "pc_workload: bad number '%s'\n", argv[k + 1]);
            return 2;
        }
        if (strcmp(argv[k], "--seed") == 0)
            seed = v;
        else if (strcmp(argv[k], "--ops") == 0)
            nops = v;
        else if (strcmp(argv[k], "--commit-window") == 0)
            window = (unsigned)v;
        else {
            fprintf(stderr, "pc_workload: unknown flag '%s'\n", argv[k]);
            return usage();
        }
        k++;
    }

    static wl w; /* large (the model); zeroed */
    w.note = (pc_note_fn)(uintptr_t)dlsym(RTLD_DEFAULT, PC_NOTE_SYMBOL);
    char start[64];
    pc_note_msg sm = {.kind = PC_NOTE_START, .seed = seed, .window = window};
    if (!w.note || pc_note_format(start, sizeof(start), &sm) < 0 ||
        w.note(start) != 0) {
        fprintf(stderr, "pc_workload: no active pc_preload.so (LD_PRELOAD, "
                        "PC_DIR and PC_LOG must be set)\n");
        return 2;
    }
    w.rng = seed * 0x9e3779b97f4a7c15ull + 1;
    w.clock_ms = T0_MS;

    mfs_store_config cfg;
    mfs_store_config_default(&cfg);
    cfg.node_id = 0x5043000000000000ull | seed; /* "PC" */
    cfg.clock_ms = clock_fn;
    cfg.clock_arg = &w;
    cfg.map_size = (size_t)64 << 20; /* small: map growth is a case too */
    cfg.commit_window_us = window;
    int rc = mfs_store_open(&w.s, dir, &cfg, MFS_STORE_CREATE);
    if (rc) {
        fprintf(stderr, "pc_workload: open %s: %s\n", dir,
                mfs_store_strerror(rc));
        return 1;
    }
    for (int d = 0; d < NDIRS; d++) {
        char name[16];
        mfs_attr a;
        w.dirname[d] = d;
        snprintf(name, sizeof(name), "d%d", d);
        rc = mfs_store_mkdir(w.s, MFS_ROOT_INO, name, 0755, 0, 0, &a);
        if (rc)
            die("mfs_store_mkdir", rc);
        w.dirino[d] = a.ino;
    }
    /* the peer: a store of the same mesh beside this one, with r/ */
    char pdir[PATH_MAX];
    snprintf(pdir, sizeof(pdir), "%s-peer", dir);
    mfs_store_config pcfg;
    mfs_store_config_default(&pcfg);
    pcfg.node_id = 0x5045000000000000ull | seed; /* "PE" */
    pcfg.clock_ms = clock_fn;
    pcfg.clock_arg = &w;
    pcfg.new_mesh = 0;
    rc = mfs_store_open(&w.peer, pdir, &pcfg, MFS_STORE_CREATE);
    if (rc) {
        fprintf(stderr, "pc_workload: open %s: %s\n", pdir,
                mfs_store_strerror(rc));
        return 1;
    }
    w.peer_id = pcfg.node_id;
    copy_ops(w.s, w.peer);
    mfs_attr ra;
    rc = mfs_store_mkdir(w.peer, MFS_ROOT_INO, "r", 0755, 0, 0, &ra);
    if (rc)
        die("peer: mfs_store_mkdir", rc);
    w.rdir = ra.ino;
    note_op(&w, "remote", "r", NULL);
    copy_ops(w.peer, w.s);
    w.remote_unsynced = true;
    op_fsync(&w, true); /* the first ACK: cuts start after it */

    uint64_t fsyncs = 1;
    uint64_t next_fsync = 1 + below(&w, 8);
    for (uint64_t k = 0; k < nops; k++) {
        uint64_t r = below(&w, 100);
        if (r < 14)
            op_create(&w);
        else if (r < 64)
            op_content(&w);
        else if (r < 70)
            op_chmod(&w);
        else if (r < 82)
            op_rename(&w);
        else if (r < 90)
            op_unlink(&w);
        else if (r < 93)
            op_rename_dir(&w);
        else if (r < 96)
            op_remote(&w);
        else
            op_publish(&w);
        if (--next_fsync == 0) {
            op_fsync(&w, fsyncs % 8 == 0);
            fsyncs++;
            next_fsync = 1 + below(&w, 8);
        }
    }
    op_fsync(&w, true);
    mfs_store_close(w.s);
    mfs_store_close(w.peer);
    fprintf(stderr,
            "pc_workload: seed %" PRIu64 ", %" PRIu64 " ops, %" PRIu64
            " fsyncs, %" PRIu64 " acks, commit window %u us\n",
            seed, w.seq, fsyncs + 1, w.acks, window);
    for (int d = 0; d < NDIRS; d++)
        for (int i = 0; i < NFILES; i++)
            free(w.f[d][i].data);
    return 0;
}
