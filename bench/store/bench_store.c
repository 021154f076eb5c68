/*
 * bench_store.c - throughput and cost of the store (store.h), not a test.
 *
 * Measures, each in one run on the same disk:
 *  1. local ops per second (create, write 4 KiB + publish, rename, unlink),
 *     grouped (mfs_store_group_begin/_end around 1000 ops), durable
 *     (mfs_store_fsync(s, 0) after every op), and through group commit as
 *     the daemon runs (a 5 ms window, nothing between ops);
 *  2. remote ops merged per second including undo/redo: two replicas do
 *     concurrent ops with interleaved stamps (renames in shared directories
 *     force the move log to undo and redo), then one's ops are applied to
 *     the other; only mfs_store_apply is timed;
 *  3. lookup and readdir cost on a tree of N entries (default 1,000,000:
 *     1000 directories of 1000 files);
 *  4. RssAnon of this process while the tree grows and is read (LMDB pages
 *     are file-backed, so this must not grow with the tree).
 * Ends with the three figures of issue 9 against their targets: grouped
 * local ops per second (all four kinds), lookup at 1,000,000 entries, and
 * bytes of store file per empty file at 1,000,000 entries.
 * Usage: bench_store [-d DIR] [-n ENTRIES] [-o OPS] [-r REMOTE_OPS]
 * DIR defaults to $TMPDIR or /tmp; it gets one subdirectory per store,
 * removed at the end.
 */
#include <errno.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <lmdb.h>

#include "store.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long rss_anon_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = -1;
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, "RssAnon:", 8))
            kb = strtol(line + 8, NULL, 10);
    if (f)
        fclose(f);
    return kb;
}

static void die(const char *what, long rc)
{
    fprintf(stderr, "bench_store: %s failed: %ld (%s)\n", what, rc,
            strerror((int)(rc < 0 ? -rc : rc)));
    exit(1);
}

#define CHECK(what, expr)                                                      \
    do {                                                                       \
        long rc_ = (long)(expr);                                               \
        if (rc_ < 0)                                                           \
            die(what, rc_);                                                    \
    } while (0)

static int rm_one(const char *p, const struct stat *st, int fl, struct FTW *ftw)
{
    (void)st;
    (void)fl;
    (void)ftw;
    return remove(p);
}

static char g_base[4096];

/* the figures that issue 9 sets targets for */
static struct {
    double grouped_ops;    /* local grouped, all four kinds, ops/s */
    double daemon_ops;     /* the same through group commit (no target) */
    double lookup_us;      /* random hit in the big tree */
    double bytes_per_file; /* store file size / files in the big tree */
    long entries;          /* files in the big tree */
    double used_per_file;  /* store pages in use per file, once settled */
} g_fig;

#define TARGET_ENTRIES 1000000L
#define TARGET_GROUPED_OPS 100000.0
#define TARGET_LOOKUP_US 5.0
#define TARGET_BYTES_PER_FILE 400.0

/* commit_window_us for open_new's stores (0: the config's default) */
static unsigned g_window_us;
/* what the daemon runs with (node/daemon.h MFS_DAEMON_COMMIT_WINDOW_US) */
#define DAEMON_WINDOW_US 5000u

static mfs_store *open_new(const char *tag, int new_mesh,
                           uint64_t (*clk)(void *), void *arg)
{
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/%s", g_base, tag);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    if (mkdir(dir, 0700))
        die("mkdir", -errno);
    mfs_store_config cfg;
    mfs_store_config_default(&cfg);
    cfg.new_mesh = new_mesh;
    cfg.clock_ms = clk;
    cfg.clock_arg = arg;
    if (g_window_us)
        cfg.commit_window_us = g_window_us;
    /* Large initial map: a group cannot grow the map yet (see
     * docs/store-findings.txt); growth is measured by the tests. */
    cfg.map_size = (size_t)8 << 30;
    mfs_store *s;
    CHECK("mfs_store_open", mfs_store_open(&s, dir, &cfg, MFS_STORE_CREATE));
    return s;
}

/* ---- 1. local ops ------------------------------------------------------- */

typedef struct local_res {
    double create, write, rename, unlink, mixed;
} local_res;

/* Runs n rounds of create, write 4 KiB + publish, rename, unlink; with
 * durable 1, fsync after each op; 0: groups of 1000 ops; 2: nothing
 * between ops (a store with group commit: the daemon's path). */
static local_res bench_local(mfs_store *s, int n, int durable)
{
    static uint8_t data[4096];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (uint8_t)(i * 31 + 7);
    mfs_attr d;
    char dname[32];
    snprintf(dname, sizeof(dname), "local-%d", durable);
    CHECK("mkdir", mfs_store_mkdir(s, MFS_ROOT_INO, dname, 0755, 0, 0, &d));
    uint64_t *ino = malloc((size_t)n * sizeof(*ino));
    local_res r;
    double t[5];
    char name[32], name2[32];
    int in_group = 0;
#define OP_DONE(k)                                                             \
    do {                                                                       \
        if (durable == 1) {                                                    \
            CHECK("fsync", mfs_store_fsync(s, 0));                             \
        } else if (durable == 0 && ++in_group == 1000) {                                       \
            CHECK("group_end", mfs_store_group_end(s));                        \
            CHECK("group_begin", mfs_store_group_begin(s));                    \
            in_group = 0;                                                      \
        }                                                                      \
    } while (0)
    if (durable == 0)
        CHECK("group_begin", mfs_store_group_begin(s));
    t[0] = now_s();
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "f%08d", i);
        mfs_attr a;
        CHECK("mknod",
              mfs_store_mknod(s, d.ino, name, S_IFREG | 0644, 0, 0, 0, &a));
        ino[i] = a.ino;
        OP_DONE(0);
    }
    t[1] = now_s();
    for (int i = 0; i < n; i++) {
        data[0] = (uint8_t)i;
        data[1] = (uint8_t)(i >> 8);
        data[2] = (uint8_t)(i >> 16);
        CHECK("write", mfs_store_write(s, ino[i], 0, data, sizeof(data)));
        CHECK("publish", mfs_store_publish(s, ino[i]));
        OP_DONE(1);
    }
    t[2] = now_s();
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "f%08d", i);
        snprintf(name2, sizeof(name2), "g%08d", i);
        CHECK("rename", mfs_store_rename(s, d.ino, name, d.ino, name2, 0));
        OP_DONE(2);
    }
    t[3] = now_s();
    for (int i = 0; i < n; i++) {
        snprintf(name2, sizeof(name2), "g%08d", i);
        CHECK("unlink", mfs_store_unlink(s, d.ino, name2));
        OP_DONE(3);
    }
    t[4] = now_s();
    if (durable == 0)
        CHECK("group_end", mfs_store_group_end(s));
    CHECK("fsync", mfs_store_fsync(s, 0));
    r.create = n / (t[1] - t[0]);
    r.write = n / (t[2] - t[1]);
    r.rename = n / (t[3] - t[2]);
    r.unlink = n / (t[4] - t[3]);
    r.mixed = 4.0 * n / (t[4] - t[0]);
    free(ino);
    return r;
#undef OP_DONE
}

/* ---- 2. remote merge ---------------------------------------------------- */

typedef struct fclock {
    uint64_t ms;
} fclock;

static uint64_t fclock_fn(void *arg)
{
    return ((fclock *)arg)->ms;
}

static uint8_t *g_batch;
#define BATCH_CAP (16u << 20)

/* Moves all ops from -> to; returns ops applied and adds apply time. */
static size_t replicate(mfs_store *from, mfs_store *to, double *secs)
{
    size_t applied = 0;
    /* ops leave a store once committed (group commit: within its window) */
    CHECK("commit", mfs_store_commit(from, 0));
    for (;;) {
        mfs_vv vv;
        CHECK("vv", mfs_store_vv(to, &vv));
        ssize_t n = mfs_store_ops_since(from, &vv, g_batch, 1u << 20);
        mfs_vv_free(&vv);
        CHECK("ops_since", n);
        if (n == 0)
            break;
        mfs_apply_result res;
        double t0 = now_s();
        CHECK("apply", mfs_store_apply(to, g_batch, (size_t)n, &res));
        *secs += now_s() - t0;
        applied += res.applied;
        if (!res.applied)
            break;
    }
    return applied;
}

static void local_mix(mfs_store *s, fclock *c, int i, uint64_t *dirs, int nd,
                      int tag)
{
    char name[32];
    uint64_t d = dirs[i % nd];
    c->ms += 1;
    mfs_attr a;
    switch (i % 4) {
    case 0:
    case 1:
        snprintf(name, sizeof(name), "n%c%07d", tag, i);
        CHECK("mknod",
              mfs_store_mknod(s, d, name, S_IFREG | 0644, 0, 0, 0, &a));
        break;
    case 2: { /* move an earlier file of ours to another shared dir */
        snprintf(name, sizeof(name), "n%c%07d", tag, i - 2);
        uint64_t from = dirs[(i - 2) % nd];
        CHECK("rename",
              mfs_store_rename(s, from, name, dirs[(i + 1) % nd], name, 0));
        break;
    }
    default: { /* a small write + publish */
        snprintf(name, sizeof(name), "n%c%07d", tag, i - 3);
        if (mfs_store_lookup(s, dirs[(i - 3) % nd], name, &a) == 0) {
            CHECK("write", mfs_store_write(s, a.ino, 0, name, 8));
            CHECK("publish", mfs_store_publish(s, a.ino));
        }
        break;
    }
    }
}

static double bench_remote(int nops, size_t *applied_out)
{
    fclock ca = {1700000000000ull}, cb = {1700000000000ull};
    mfs_store *a = open_new("remote-a", 1, fclock_fn, &ca);
    mfs_store *b = open_new("remote-b", 0, fclock_fn, &cb);
    double dummy = 0;
    replicate(a, b, &dummy);
    /* shared directories */
    enum { ND = 16 };
    uint64_t da[ND], db[ND];
    for (int i = 0; i < ND; i++) {
        char n[16];
        snprintf(n, sizeof(n), "d%02d", i);
        mfs_attr at;
        CHECK("mkdir", mfs_store_mkdir(a, MFS_ROOT_INO, n, 0755, 0, 0, &at));
        da[i] = at.ino;
    }
    replicate(a, b, &dummy);
    for (int i = 0; i < ND; i++) {
        char n[16];
        snprintf(n, sizeof(n), "d%02d", i);
        mfs_attr at;
        CHECK("lookup", mfs_store_lookup(b, MFS_ROOT_INO, n, &at));
        db[i] = at.ino;
    }
    /* concurrent histories with interleaved stamps: both clocks advance
     * together, so every remote move lands between local ones and the
     * receiver must undo its later moves, apply, and redo them */
    CHECK("group_begin", mfs_store_group_begin(a));
    for (int i = 0; i < nops; i++)
        local_mix(a, &ca, i, da, ND, 'a');
    CHECK("group_end", mfs_store_group_end(a));
    CHECK("group_begin", mfs_store_group_begin(b));
    for (int i = 0; i < nops; i++)
        local_mix(b, &cb, i, db, ND, 'b');
    CHECK("group_end", mfs_store_group_end(b));
    double secs = 0;
    size_t applied = replicate(a, b, &secs);
    *applied_out = applied;
    mfs_store_close(a);
    mfs_store_close(b);
    return applied / secs;
}

/* ---- baseline: raw LMDB ------------------------------------------------- */

/* The floor for a lookup on this machine at this moment: one read txn and
 * one mdb_get of a (dir, name) key among `entries`, as a store lookup needs
 * at least that. Returns us per get. */
static double bench_raw_lmdb(long entries)
{
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/raw-lmdb", g_base);
    if (mkdir(dir, 0700))
        die("mkdir raw", -errno);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    CHECK("mdb_env_create", -mdb_env_create(&env));
    mdb_env_set_mapsize(env, (size_t)8 << 30);
    CHECK("mdb_env_open", -mdb_env_open(env, dir, MDB_NOSYNC, 0600));
    CHECK("mdb_txn_begin", -mdb_txn_begin(env, NULL, 0, &txn));
    CHECK("mdb_dbi_open", -mdb_dbi_open(txn, NULL, 0, &dbi));
    uint8_t key[64], val[16] = {0};
    long per = 1000;
    for (long i = 0; i < entries; i++) {
        uint64_t d = (uint64_t)(i / per);
        for (int b = 0; b < 8; b++)
            key[b] = (uint8_t)(d >> (56 - 8 * b));
        int kl = 8 + snprintf((char *)key + 8, 32, "file%06ld", i % per);
        MDB_val k = {(size_t)kl, key}, v = {sizeof(val), val};
        CHECK("mdb_put", -mdb_put(txn, dbi, &k, &v, 0));
        if (i % 100000 == 99999) {
            CHECK("mdb_txn_commit", -mdb_txn_commit(txn));
            CHECK("mdb_txn_begin", -mdb_txn_begin(env, NULL, 0, &txn));
        }
    }
    CHECK("mdb_txn_commit", -mdb_txn_commit(txn));
    uint64_t x = 88172645463325252ull;
    long nl = 1000000;
    double t0 = now_s();
    for (long i = 0; i < nl; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        long k0 = (long)(x % (uint64_t)entries);
        uint64_t d = (uint64_t)(k0 / per);
        for (int b = 0; b < 8; b++)
            key[b] = (uint8_t)(d >> (56 - 8 * b));
        int kl = 8 + snprintf((char *)key + 8, 32, "file%06ld", k0 % per);
        MDB_val k = {(size_t)kl, key}, v;
        CHECK("mdb_txn_begin", -mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
        CHECK("mdb_get", -mdb_get(txn, dbi, &k, &v));
        mdb_txn_abort(txn);
    }
    double us = (now_s() - t0) / nl * 1e6;
    mdb_env_close(env);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return us;
}

/* ---- 3/4. big tree ------------------------------------------------------ */

static int count_cb(void *arg, const char *name, uint64_t ino, uint32_t mode)
{
    (void)name;
    (void)ino;
    (void)mode;
    (*(size_t *)arg)++;
    return 0;
}

/* The tree once settled (a store alone: everything is): collection folds
 * the op log and forgets the undo log of the moves. Then a snapshot of
 * it, installed into an empty store (what a new member gets). */
static void bench_settled(mfs_store *s, long made)
{
    mfs_store_stats st;
    CHECK("stats", mfs_store_stats_get(s, &st));
    double used0 = (double)st.used_bytes;
    mfs_vv vv;
    CHECK("vv", mfs_store_vv(s, &vv));
    mfs_store_collect_settled(s, &vv);
    mfs_vv_free(&vv);
    mfs_collect_stats cs;
    double t0 = now_s();
    CHECK("collect", mfs_store_collect_now(s, &cs));
    double tc = now_s() - t0;
    CHECK("stats", mfs_store_stats_get(s, &st));
    double used1 = (double)st.used_bytes;
    printf("settled: collection folded %llu ops and forgot %llu moves in "
           "%.1f s (longest step %.1f ms); store pages in use per file "
           "%.0f -> %.0f bytes (%llu ops left in the log)\n",
           (unsigned long long)cs.folded, (unsigned long long)cs.moves, tc,
           cs.max_pause_us / 1e3, used0 / (double)made, used1 / (double)made,
           (unsigned long long)st.ops);
    g_fig.used_per_file = used1 / (double)made;
    int fd;
    uint64_t len;
    mfs_snapshot_info inf;
    t0 = now_s();
    CHECK("snapshot", mfs_store_snapshot_file(s, &fd, &len, &inf));
    double tb = now_s() - t0;
    /* installed from a map of its file, as sync/repl.c installs one */
    uint8_t *snap = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    if (snap == MAP_FAILED) {
        fprintf(stderr, "map the snapshot: %s\n", strerror(errno));
        exit(1);
    }
    mfs_store *b = open_new("joiner", 0, NULL, NULL);
    t0 = now_s();
    CHECK("install", mfs_store_snapshot_install(b, snap, len, &inf));
    double ti = now_s() - t0;
    mfs_attr a;
    CHECK("lookup after install", mfs_store_lookup(b, MFS_ROOT_INO,
                                                   "dir00000", &a));
    printf("snapshot: %.1f MiB (%.0f bytes per file), built in %.2f s, "
           "installed in an empty store in %.2f s (%.0f files/s)\n",
           len / 1048576.0, (double)len / (double)made, tb, ti,
           (double)made / ti);
    mfs_store_close(b);
    munmap(snap, len);
    close(fd);
}

static void bench_tree(long entries)
{
    mfs_store *s = open_new("tree", 1, NULL, NULL);
    long per = 1000, ndirs = (entries + per - 1) / per;
    uint64_t *dirs = malloc((size_t)ndirs * sizeof(*dirs));
    long rss0 = rss_anon_kb();
    printf("tree: RssAnon at start %ld kB\n", rss0);
    double t0 = now_s();
    long made = 0;
    CHECK("group_begin", mfs_store_group_begin(s));
    for (long d = 0; d < ndirs; d++) {
        char n[32];
        snprintf(n, sizeof(n), "dir%05ld", d);
        mfs_attr a;
        CHECK("mkdir", mfs_store_mkdir(s, MFS_ROOT_INO, n, 0755, 0, 0, &a));
        dirs[d] = a.ino;
        for (long f = 0; f < per && made < entries; f++, made++) {
            snprintf(n, sizeof(n), "file%06ld", f);
            CHECK("mknod",
                  mfs_store_mknod(s, a.ino, n, S_IFREG | 0644, 0, 0, 0, &a));
            a.ino = dirs[d];
        }
        if (d % 10 == 9) {
            CHECK("group_end", mfs_store_group_end(s));
            CHECK("group_begin", mfs_store_group_begin(s));
        }
        if ((made % 250000) == 0 && made)
            printf("tree: %ld entries, RssAnon %ld kB, %.0f creates/s\n", made,
                   rss_anon_kb(), made / (now_s() - t0));
    }
    CHECK("group_end", mfs_store_group_end(s));
    CHECK("fsync", mfs_store_fsync(s, 0));
    double tb = now_s() - t0;
    mfs_store_stats st;
    CHECK("stats", mfs_store_stats_get(s, &st));
    printf("tree: built %ld entries + %ld dirs in %.1f s (%.0f/s); store file "
           "%.1f MiB; RssAnon %ld kB\n",
           made, ndirs, tb, (made + ndirs) / tb, st.store_bytes / 1048576.0,
           rss_anon_kb());
    g_fig.entries = made;
    g_fig.bytes_per_file = made ? (double)st.store_bytes / (double)made : 0;
    char mdb[4200];
    struct stat sb;
    snprintf(mdb, sizeof(mdb), "%s/tree/data.mdb", g_base);
    double alloc = stat(mdb, &sb) == 0 ? (double)sb.st_blocks * 512 : 0;
    printf("tree: store file per empty file: %.0f bytes (%.1f MiB / %ld "
           "files; the %ld dirs counted in the file, not in the divisor); "
           "blocks allocated on disk %.1f MiB (preallocation included)\n",
           g_fig.bytes_per_file, st.store_bytes / 1048576.0, made, ndirs,
           alloc / 1048576.0);
    /* lookups: random existing names */
    uint64_t x = 88172645463325252ull;
    long nl = 1000000;
    mfs_attr a;
    char n[32];
    double t1 = now_s();
    for (long i = 0; i < nl; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        long k = (long)(x % (uint64_t)made);
        snprintf(n, sizeof(n), "file%06ld", k % per);
        CHECK("lookup", mfs_store_lookup(s, dirs[k / per], n, &a));
    }
    double tl = now_s() - t1;
    g_fig.lookup_us = tl / nl * 1e6;
    printf("lookup: %.2f us each (%ld random hits)\n", tl / nl * 1e6, nl);
    double raw = bench_raw_lmdb(made);
    printf("baseline: raw LMDB read txn + mdb_get among %ld keys: %.2f us "
           "(store lookup / raw = %.1fx)\n",
           made, raw, tl / nl * 1e6 / raw);
    t1 = now_s();
    for (long i = 0; i < nl; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        long k = (long)(x % (uint64_t)made);
        snprintf(n, sizeof(n), "nope%06ld", k % per);
        if (mfs_store_lookup(s, dirs[k / per], n, &a) != -ENOENT)
            die("negative lookup", -EINVAL);
    }
    tl = now_s() - t1;
    printf("lookup (miss): %.2f us each\n", tl / nl * 1e6);
    t1 = now_s();
    for (long i = 0; i < nl; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        long k = (long)(x % (uint64_t)made);
        snprintf(n, sizeof(n), "file%06ld", k % per);
        CHECK("lookup", mfs_store_lookup(s, dirs[k / per], n, &a));
        CHECK("getattr", mfs_store_getattr(s, a.ino, &a));
    }
    tl = now_s() - t1;
    printf("lookup+getattr: %.2f us each\n", tl / nl * 1e6);
    /* readdir: every directory in full */
    size_t cnt = 0;
    t1 = now_s();
    for (long d = 0; d < ndirs; d++)
        CHECK("readdir", mfs_store_readdir(s, dirs[d], NULL, count_cb, &cnt));
    double tr = now_s() - t1;
    printf("readdir: %.3f us per entry (%zu entries in %ld dirs, %.2f ms per "
           "1000-entry dir)\n",
           tr / (double)cnt * 1e6, cnt, ndirs, tr / (double)ndirs * 1e3);
    cnt = 0;
    t1 = now_s();
    CHECK("readdir", mfs_store_readdir(s, MFS_ROOT_INO, NULL, count_cb, &cnt));
    printf("readdir of the root (%zu entries): %.2f ms\n", cnt,
           (now_s() - t1) * 1e3);
    printf("tree: RssAnon after reads %ld kB (start %ld kB)\n", rss_anon_kb(),
           rss0);
    /* what `meshfs stat` reads: the kept counts, against the scans they
     * replaced (both on a warm cache; best of 5) */
    double best_kept = 1e9, best_scan = 1e9;
    for (int i = 0; i < 5; i++) {
        t1 = now_s();
        CHECK("stats", mfs_store_stats_get(s, &st));
        double tk = now_s() - t1;
        best_kept = tk < best_kept ? tk : best_kept;
        t1 = now_s();
        CHECK("stats scan", mfs_store_stats_scan(s, &st));
        double ts = now_s() - t1;
        best_scan = ts < best_scan ? ts : best_scan;
    }
    printf("stats at %ld entries: %.3f ms from the kept counts, %.1f ms by "
           "scanning (%.0fx)\n",
           made, best_kept * 1e3, best_scan * 1e3, best_scan / best_kept);
    bench_settled(s, made);
    mfs_store_close(s);
    free(dirs);
}

static const char *verdict(int met)
{
    return met ? "met" : "MISSED";
}

/* The three figures of issue 9, each with its target. Their targets hold
 * at 1,000,000 entries; a run with another -n says so on every line. */
static void print_targets(void)
{
    char at[96] = "";
    if (g_fig.entries != TARGET_ENTRIES)
        snprintf(at, sizeof(at), " (at %ld entries, not %ld: indicative only)",
                 g_fig.entries, TARGET_ENTRIES);
    printf("targets (issue 9):\n");
    printf("  grouped local ops (create, write 4 KiB+publish, rename, unlink; "
           "1000 ops/commit): %.0f ops/s, target >= %.0f ops/s: %s\n",
           g_fig.grouped_ops, TARGET_GROUPED_OPS,
           verdict(g_fig.grouped_ops >= TARGET_GROUPED_OPS));
    printf("    (the daemon's path, group commit: %.0f ops/s)\n",
           g_fig.daemon_ops);
    printf("  lookup at %ld entries (random hit): %.2f us, target <= %.0f us: "
           "%s%s\n",
           g_fig.entries, g_fig.lookup_us, TARGET_LOOKUP_US,
           verdict(g_fig.lookup_us <= TARGET_LOOKUP_US), at);
    printf("  store file per empty file at %ld entries: %.0f bytes, target <= "
           "%.0f bytes: %s%s\n",
           g_fig.entries, g_fig.bytes_per_file, TARGET_BYTES_PER_FILE,
           verdict(g_fig.bytes_per_file <= TARGET_BYTES_PER_FILE), at);
    printf("  the same once settled (op log folded, move log forgotten), "
           "pages in use: %.0f bytes, target <= %.0f bytes: %s%s\n",
           g_fig.used_per_file, TARGET_BYTES_PER_FILE,
           verdict(g_fig.used_per_file <= TARGET_BYTES_PER_FILE), at);
}

int main(int argc, char **argv)
{
    const char *base = getenv("TMPDIR");
    long entries = 1000000;
    int nops = 100000, nremote = 50000, keep = 0;
    int opt;
    while ((opt = getopt(argc, argv, "d:kn:o:r:")) != -1) {
        switch (opt) {
        case 'd':
            base = optarg;
            break;
        case 'k':
            keep = 1;
            break;
        case 'n':
            entries = strtol(optarg, NULL, 0);
            break;
        case 'o':
            nops = (int)strtol(optarg, NULL, 0);
            break;
        case 'r':
            nremote = (int)strtol(optarg, NULL, 0);
            break;
        default:
            fprintf(stderr,
                    "usage: bench_store [-d DIR] [-k] [-n ENTRIES] [-o OPS] "
                    "[-r REMOTE_OPS]\n"
                    "  -k  keep the stores (to inspect with mdb_stat)\n");
            return 2;
        }
    }
    if (!base || !*base)
        base = "/tmp";
    snprintf(g_base, sizeof(g_base), "%s/meshfs-bench-%d", base, (int)getpid());
    if (mkdir(g_base, 0700))
        die("mkdir base", -errno);
    g_batch = malloc(BATCH_CAP);
    printf("bench_store: dir %s, %d local ops per kind, %d remote ops, %ld "
           "entries; RssAnon %ld kB\n",
           g_base, nops, nremote, entries, rss_anon_kb());

    mfs_store *s = open_new("local", 1, NULL, NULL);
    local_res g = bench_local(s, nops, 0);
    printf(
        "local grouped (1000 ops/commit): create %.0f/s, write 4 KiB+publish "
        "%.0f/s, rename %.0f/s, unlink %.0f/s, all %.0f ops/s\n",
        g.create, g.write, g.rename, g.unlink, g.mixed);
    g_fig.grouped_ops = g.mixed;
    int nd = nops / 50 > 0 ? nops / 50 : 1;
    local_res d = bench_local(s, nd, 1);
    printf(
        "local durable (fsync each op, %d per kind): create %.0f/s, write "
        "4 KiB+publish %.0f/s, rename %.0f/s, unlink %.0f/s, all %.0f ops/s\n",
        nd, d.create, d.write, d.rename, d.unlink, d.mixed);
    mfs_store_close(s);
    /* the daemon's path: every call through the commit thread's shared
     * txn (store/txn.c gc_write), a 5 ms window (unless
     * MESHFS_COMMIT_WINDOW_US set one for every store above) */
    g_window_us = DAEMON_WINDOW_US;
    s = open_new("local-gc", 1, NULL, NULL);
    g_window_us = 0;
    local_res c = bench_local(s, nops, 2);
    printf("local, group commit as the daemon runs (%u us window): create "
           "%.0f/s, write 4 KiB+publish %.0f/s, rename %.0f/s, unlink %.0f/s, "
           "all %.0f ops/s\n",
           DAEMON_WINDOW_US, c.create, c.write, c.rename, c.unlink, c.mixed);
    g_fig.daemon_ops = c.mixed;
    mfs_store_close(s);
    printf("RssAnon after the local runs (store closed): %ld kB\n",
           rss_anon_kb());

    size_t applied = 0;
    double rr = bench_remote(nremote, &applied);
    printf("remote merge with undo/redo: %.0f ops/s (%zu ops applied); RssAnon "
           "after (stores closed) %ld kB\n",
           rr, applied, rss_anon_kb());

    bench_tree(entries);
    if (keep)
        printf("stores kept in %s\n", g_base);
    else
        nftw(g_base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    print_targets();
    free(g_batch);
    return 0;
}
