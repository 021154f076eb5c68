/*
 * test_store_replica.c - the replica (sync/) half of store.h, black-box:
 * replicating one store into another through version vectors, op batches
 * and chunks; idempotence and order independence of apply; rejection of
 * malformed batches (and of remote names with '/' or NUL) with -EBADMSG and
 * no state change; stamps from the far future deferred; and the P7/P8
 * conflict rules (concurrent edits, same-name creates, edit vs delete,
 * rename cycles), checked on both replicas with mfs_store_dump.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "blake2b.h"
#include "kv.h" /* DB_SUPERSEDED: a snapshot record's table */
#include "store.h"
#include "testutil.h"

/* ---- harness ----------------------------------------------------------- */

#define T0 1700000000000ull
#define BATCH_CAP (4u << 20)

typedef struct rep {
    char *dir;
    tclock clk;
    mfs_store *s;
    uint64_t node;
} rep;

/* Every open replica, so the teardown can close and remove what a failed
 * test left behind. The teardown uses the copies kept here: a failed
 * assertion leaves the test's own rep structs (on its stack) gone. */
static struct open_rep {
    rep *r;
    mfs_store *s;
    char *dir;
} g_open[16];

static void reg(rep *r, int on)
{
    for (int i = 0; i < 16; i++)
        if (on ? !g_open[i].r : g_open[i].r == r) {
            g_open[i] = (struct open_rep){on ? r : NULL, NULL, NULL};
            return;
        }
}

/* After r's store or directory changed. */
static void reg_sync(rep *r)
{
    for (int i = 0; i < 16; i++)
        if (g_open[i].r == r) {
            g_open[i].s = r->s;
            g_open[i].dir = r->dir;
        }
}

static int teardown(void **state)
{
    (void)state;
    for (int i = 0; i < 16; i++)
        if (g_open[i].r) {
            mfs_store_close(g_open[i].s);
            if (g_open[i].dir)
                mfs_test_rmdir(g_open[i].dir);
            g_open[i] = (struct open_rep){NULL, NULL, NULL};
        }
    return 0;
}

static void rep_open(rep *r, int new_mesh, uint64_t node)
{
    memset(r, 0, sizeof(*r));
    reg(r, 1);
    r->dir = mfs_test_mkdtemp("rep");
    r->clk.ms = T0;
    mfs_store_config cfg;
    mfs_test_store_config(&cfg, &r->clk);
    cfg.new_mesh = new_mesh;
    cfg.node_id = node;
    int rc = mfs_store_open(&r->s, r->dir, &cfg, MFS_STORE_CREATE);
    reg_sync(r);
    if (rc)
        print_error("open: %d %s\n", rc, mfs_store_strerror(rc));
    assert_int_equal(rc, 0);
    r->node = mfs_store_node_id(r->s);
    assert_true(node == 0 || r->node == node);
}

static void rep_reopen(rep *r)
{
    mfs_store_close(r->s);
    mfs_store_config cfg;
    mfs_test_store_config(&cfg, &r->clk);
    r->s = NULL;
    reg_sync(r);
    assert_int_equal(mfs_store_open(&r->s, r->dir, &cfg, 0), 0);
    reg_sync(r);
}

static void rep_close(rep *r)
{
    reg(r, 0);
    mfs_store_close(r->s);
    mfs_test_rmdir(r->dir);
    r->s = NULL;
    r->dir = NULL;
}

static char *dump(mfs_store *s)
{
    int rc = 0;
    char *d = mfs_test_dump(s, &rc);
    assert_int_equal(rc, 0);
    return d;
}

static void assert_same_dump(mfs_store *a, mfs_store *b)
{
    char *da = dump(a), *db = dump(b);
    if (strcmp(da, db))
        print_error("dumps differ:\n--- A\n%s--- B\n%s", da, db);
    assert_string_equal(da, db);
    free(da);
    free(db);
}

static uint8_t *batchbuf(void)
{
    static uint8_t *b;
    if (!b)
        b = malloc(BATCH_CAP);
    return b;
}

/* Whole batch of what `from` has and `to` lacks (one call). */
static ssize_t batch_for(mfs_store *from, mfs_store *to, uint8_t *buf,
                         size_t cap)
{
    mfs_vv vv;
    assert_int_equal(mfs_store_vv(to, &vv), 0);
    ssize_t n = mfs_store_ops_since(from, &vv, buf, cap);
    mfs_vv_free(&vv);
    assert_true(n >= 0);
    return n;
}

/* Ops from -> to until nothing is missing or nothing more applies. */
static size_t sync_ops(mfs_store *from, mfs_store *to)
{
    uint8_t *buf = batchbuf();
    size_t total = 0;
    for (int guard = 0; guard < 10000; guard++) {
        ssize_t n = batch_for(from, to, buf, BATCH_CAP);
        if (n == 0)
            break;
        mfs_apply_result res = {0};
        int rc = mfs_store_apply(to, buf, (size_t)n, &res);
        if (rc)
            print_error("apply: %d\n", rc);
        assert_int_equal(rc, 0);
        total += res.applied;
        if (res.applied == 0)
            break; /* all deferred or duplicates */
    }
    return total;
}

/* Chunks `to` wants, fetched from any of the holders. */
static void sync_chunks(mfs_store *to, rep **holders, int nh)
{
    static uint8_t hashes[256 * MFS_HASH_LEN];
    static uint8_t data[MFS_CHUNK_SIZE];
    for (int guard = 0; guard < 1000; guard++) {
        ssize_t n = mfs_store_chunks_wanted(to, hashes, 256);
        assert_true(n >= 0);
        if (n == 0)
            return;
        int progress = 0;
        for (ssize_t i = 0; i < n; i++) {
            const uint8_t *h = hashes + i * MFS_HASH_LEN;
            for (int j = 0; j < nh; j++) {
                if (holders[j]->s == to ||
                    mfs_store_chunk_has(holders[j]->s, h) != 1)
                    continue;
                ssize_t len =
                    mfs_store_chunk_get(holders[j]->s, h, data, sizeof(data));
                assert_true(len >= 0);
                assert_int_equal(mfs_store_chunk_put(to, h, data, (size_t)len),
                                 0);
                progress = 1;
                break;
            }
        }
        if (!progress)
            return;
    }
}

static void sync_pair(rep *a, rep *b)
{
    rep *h[2] = {a, b};
    sync_ops(a->s, b->s);
    sync_ops(b->s, a->s);
    sync_ops(a->s, b->s);
    sync_chunks(a->s, h, 2);
    sync_chunks(b->s, h, 2);
}

/* Exchanges everything between a and b; then both dumps must be equal. */
static void merge(rep *a, rep *b)
{
    sync_pair(a, b);
    assert_same_dump(a->s, b->s);
}

/* A new mesh on a, b joined to it. */
static void mesh2(rep *a, rep *b)
{
    rep_open(a, 1, 0xa1a1a1a1ull);
    rep_open(b, 0, 0xb2b2b2b2ull);
    merge(a, b);
}

/* mesh2, and c joins through a. */
static void mesh3(rep *a, rep *b, rep *c)
{
    mesh2(a, b);
    rep_open(c, 0, 0xc3c3c3c3ull);
    sync_pair(a, c);
}

static void build_tree(mfs_store *s);

/* a with build_tree's tree, b a new replica that has none of it. */
static void tree_and_empty(rep *a, rep *b)
{
    rep_open(a, 1, 0xa1);
    rep_open(b, 0, 0xb2);
    build_tree(a->s);
}

static void close2(rep *a, rep *b)
{
    rep_close(a);
    rep_close(b);
}

static void put_pub(mfs_store *s, uint64_t ino, const char *txt)
{
    mfs_setattr sa = {.mask = MFS_SET_SIZE, .size = 0};
    mfs_attr a;
    assert_int_equal(mfs_store_setattr(s, ino, &sa, &a), 0);
    size_t n = strlen(txt);
    assert_int_equal(mfs_store_write(s, ino, 0, txt, n), (ssize_t)n);
    assert_int_equal(mfs_store_publish(s, ino), 0);
}

/* Reads a whole (small) file into a static string. */
static const char *content(mfs_store *s, uint64_t ino)
{
    static char buf[4][4096];
    static int k;
    char *b = buf[k++ % 4];
    ssize_t n = mfs_store_read(s, ino, 0, b, sizeof(buf[0]) - 1);
    assert_true(n >= 0);
    b[n] = 0;
    return b;
}

static void vv_equal(mfs_store *a, mfs_store *b)
{
    mfs_vv va, vb;
    assert_int_equal(mfs_store_vv(a, &va), 0);
    assert_int_equal(mfs_store_vv(b, &vb), 0);
    assert_int_equal(mfs_vv_missing(&va, &vb), 0);
    assert_int_equal(mfs_vv_missing(&vb, &va), 0);
    mfs_vv_free(&va);
    mfs_vv_free(&vb);
}

/* Splits a batch into its ops: offsets and lengths of each [len][op]. */
typedef struct opref {
    size_t off, len; /* of the whole record, length prefix included */
} opref;

static size_t split_batch(const uint8_t *b, size_t n, opref *out, size_t max)
{
    size_t k = 0, off = 0;
    while (off < n) {
        assert_true(n - off >= 4);
        uint32_t l = ((uint32_t)b[off] << 24) | ((uint32_t)b[off + 1] << 16) |
                     ((uint32_t)b[off + 2] << 8) | b[off + 3];
        assert_true(l > 0 && l <= n - off - 4);
        assert_true(k < max);
        out[k].off = off;
        out[k].len = 4 + l;
        k++;
        off += 4 + l;
    }
    return k;
}

/* Builds a rich tree on s. */
static void build_tree(mfs_store *s)
{
    uint64_t d = mkdir_(s, MFS_ROOT_INO, "docs");
    uint64_t sub = mkdir_(s, d, "sub");
    uint64_t a = mkfile(s, d, "a.txt");
    put_pub(s, a, "alpha");
    uint64_t big = mkfile(s, sub, "big.bin");
    static uint8_t blk[3 * MFS_CHUNK_SIZE + 17];
    for (size_t i = 0; i < sizeof(blk); i++)
        blk[i] = (uint8_t)(i * 7 + i / 1000);
    assert_int_equal(mfs_store_write(s, big, 0, blk, sizeof(blk)),
                     (ssize_t)sizeof(blk));
    assert_int_equal(mfs_store_write(s, big, 10 * MFS_CHUNK_SIZE, "tail", 4),
                     4);
    assert_int_equal(mfs_store_publish(s, big), 0);
    mfs_attr at;
    assert_int_equal(mfs_store_link(s, a, MFS_ROOT_INO, "a-hard", &at), 0);
    assert_int_equal(mfs_store_symlink(s, d, "to-a", "a.txt", 1, 2, &at), 0);
    assert_int_equal(
        mfs_store_mknod(s, d, "fifo", S_IFIFO | 0600, 0, 3, 4, &at), 0);
    assert_int_equal(mfs_store_setxattr(s, a, "user.tag", "red", 3, 0), 0);
    assert_int_equal(mfs_store_setxattr(s, d, "user.dir", "x", 1, 0), 0);
    mfs_setattr sa = {.mask = MFS_SET_MODE | MFS_SET_UID | MFS_SET_MTIME,
                      .mode = 0600,
                      .uid = 77,
                      .mtime_ns = 1234567890123ll};
    assert_int_equal(mfs_store_setattr(s, a, &sa, &at), 0);
    uint64_t gone = mkfile(s, d, "gone");
    put_pub(s, gone, "bye");
    assert_int_equal(mfs_store_unlink(s, d, "gone"), 0);
    mkdir_(s, sub, "empty");
    assert_int_equal(mfs_store_rename(s, d, "sub", MFS_ROOT_INO, "moved", 0),
                     0);
}

/* ---- tests ------------------------------------------------------------- */

typedef struct chg {
    int entry, inode;
} chg;

static void on_change(void *arg, int kind, uint64_t ino, const char *name)
{
    chg *c = arg;
    if (kind == MFS_CHANGE_ENTRY)
        c->entry++;
    else if (kind == MFS_CHANGE_INODE)
        c->inode++;
}

static void test_replicate_basic(void **state)
{
    (void)state;
    rep a, b;
    tree_and_empty(&a, &b);
    chg c = {0};
    mfs_store_set_change_cb(b.s, on_change, &c);

    mfs_vv va, vb;
    assert_int_equal(mfs_store_vv(a.s, &va), 0);
    assert_int_equal(mfs_store_vv(b.s, &vb), 0);
    assert_true(mfs_vv_get(&va, a.node) > 0);
    assert_int_equal(mfs_vv_get(&vb, a.node), 0);
    assert_int_equal(mfs_vv_get(&va, 0x123456), 0);
    assert_true(mfs_vv_missing(&va, &vb) == mfs_vv_get(&va, a.node));
    assert_int_equal(mfs_vv_missing(&vb, &va), 0);
    for (size_t i = 1; i < va.n; i++)
        assert_true(va.e[i - 1].node < va.e[i].node);
    mfs_vv_free(&va);
    mfs_vv_free(&vb);

    /* ops first: the tree shows, content does not until chunks arrive */
    assert_true(sync_ops(a.s, b.s) > 0);
    assert_true(c.entry > 0);
    vv_equal(a.s, b.s);
    uint64_t bd = ino_of(b.s, MFS_ROOT_INO, "docs");
    uint64_t ba = ino_of(b.s, bd, "a.txt");
    mfs_file_info fi;
    assert_int_equal(mfs_store_file_info(b.s, ba, &fi, NULL, 0), 0);
    assert_true(fi.version.hlc == 0);
    assert_string_equal(content(b.s, ba), "");
    static uint8_t want[64 * MFS_HASH_LEN];
    ssize_t nw = mfs_store_chunks_wanted(b.s, want, 64);
    /* a.txt (1) + big.bin's chunks that are not holes */
    ssize_t big = data_chunks(
        a.s, ino_of(a.s, ino_of(a.s, MFS_ROOT_INO, "moved"), "big.bin"));
    if (nw != 1 + big)
        print_error("chunks wanted: %zd (a.txt 1 + big.bin %zd)\n", nw, big);
    /* + 1: also the deleted file's chunk */
    assert_true(nw == 1 + big || nw == 2 + big);
    assert_int_equal(mfs_store_chunks_wanted(b.s, want, 2), 2);
    /* a wrong chunk is refused */
    assert_int_equal(mfs_store_chunk_put(b.s, want, "nope", 4), -EBADMSG);
    uint8_t zero[MFS_HASH_LEN] = {0};
    char tmp[8];
    assert_int_equal(mfs_store_chunk_get(b.s, zero, tmp, sizeof(tmp)), -ENOENT);
    assert_int_equal(mfs_store_chunk_has(b.s, zero), 0);
    rep *h[1] = {&a};
    c.inode = 0;
    c.entry = 0;
    sync_chunks(b.s, h, 1);
    assert_int_equal(mfs_store_chunks_wanted(b.s, want, 64), 0);
    /* completing a version is an inode change the kernel must hear of */
    if (c.inode == 0)
        print_error("no MFS_CHANGE_INODE when chunks completed 2 versions "
                    "(%d entry changes)\n",
                    c.entry);
    assert_true(c.inode > 0);
    assert_string_equal(content(b.s, ba), "alpha");
    assert_int_equal(mfs_store_file_info(b.s, ba, &fi, NULL, 0), 0);
    uint64_t aa = ino_of(a.s, ino_of(a.s, MFS_ROOT_INO, "docs"), "a.txt");
    mfs_file_info fa;
    assert_int_equal(mfs_store_file_info(a.s, aa, &fa, NULL, 0), 0);
    assert_int_equal(mfs_stamp_cmp(fi.version, fa.version), 0);
    assert_true(fi.id.node == fa.id.node && fi.id.seq == fa.id.seq);
    assert_same_dump(a.s, b.s);
    mfs_attr at;
    assert_int_equal(mfs_store_getattr(b.s, ba, &at), 0);
    assert_int_equal(at.nlink, 2);
    assert_int_equal(at.uid, 77);
    assert_int_equal(at.mode, S_IFREG | 0600);
    assert_true(at.mtime_ns == 1234567890123ll);
    char v[8];
    assert_int_equal(mfs_store_getxattr(b.s, ba, "user.tag", v, sizeof(v)), 3);
    assert_int_equal(mfs_store_lookup(b.s, bd, "gone", &at), -ENOENT);
    uint64_t bm = ino_of(b.s, MFS_ROOT_INO, "moved");
    uint64_t bb = ino_of(b.s, bm, "big.bin");
    static uint8_t rb[11 * MFS_CHUNK_SIZE];
    assert_int_equal(mfs_store_read(b.s, bb, 0, rb, sizeof(rb)),
                     10 * MFS_CHUNK_SIZE + 4);
    for (size_t i = 0; i < 3 * MFS_CHUNK_SIZE + 17; i++)
        if (rb[i] != (uint8_t)(i * 7 + i / 1000))
            fail_msg("big.bin differs at %zu", i);
    assert_memory_equal(rb + 10 * MFS_CHUNK_SIZE, "tail", 4);
    /* nothing left to send either way */
    assert_int_equal(batch_for(a.s, b.s, batchbuf(), BATCH_CAP), 0);
    assert_int_equal(batch_for(b.s, a.s, batchbuf(), BATCH_CAP), 0);
    /* persistence of replicated state */
    rep_reopen(&b);
    assert_same_dump(a.s, b.s);
    /* and B can now change things A sees */
    bd = ino_of(b.s, MFS_ROOT_INO, "docs");
    put_pub(b.s, ino_of(b.s, bd, "a.txt"), "beta");
    sync_pair(&a, &b);
    assert_string_equal(content(a.s, aa), "beta");
    assert_same_dump(a.s, b.s);
    close2(&a, &b);
}

static void test_join_gets_lostfound(void **state)
{
    (void)state;
    rep a, b;
    rep_open(&a, 1, 0);
    rep_open(&b, 0, 0);
    assert_true(a.node != b.node);
    sync_ops(a.s, b.s);
    mfs_attr at;
    assert_int_equal(mfs_store_lookup(b.s, MFS_ROOT_INO, "lost+found", &at), 0);
    assert_true(S_ISDIR(at.mode));
    assert_same_dump(a.s, b.s);
    close2(&a, &b);
}

static void test_small_batches(void **state)
{
    (void)state;
    rep a, b;
    tree_and_empty(&a, &b);
    uint8_t tiny[8];
    mfs_vv vv;
    assert_int_equal(mfs_store_vv(b.s, &vv), 0);
    assert_int_equal(mfs_store_ops_since(a.s, &vv, tiny, sizeof(tiny)),
                     -ENOBUFS);
    mfs_vv_free(&vv);
    /* 600-byte batches: many round trips, same result */
    uint8_t *buf = malloc(600);
    int rounds = 0;
    for (;;) {
        ssize_t n = batch_for(a.s, b.s, buf, 600);
        if (n == 0)
            break;
        assert_true(n <= 600);
        mfs_apply_result res;
        assert_int_equal(mfs_store_apply(b.s, buf, (size_t)n, &res), 0);
        assert_true(res.applied > 0);
        assert_true(++rounds < 10000);
    }
    assert_true(rounds > 2);
    free(buf);
    rep *h[1] = {&a};
    sync_chunks(b.s, h, 1);
    assert_same_dump(a.s, b.s);
    close2(&a, &b);
}

/* A batch's prefix ending where an action ends, at most cap bytes
 * (mfs_batch_prefix), is the batch mfs_store_ops_since() returns with that
 * cap: sync/repl.c applies a large batch in such slices, as if the peer
 * had sent smaller batches. Slices applied one by one give the same tree
 * as the batch applied whole. */
static void test_batch_prefix(void **state)
{
    (void)state;
    rep a, b;
    tree_and_empty(&a, &b);
    uint8_t *full = malloc(BATCH_CAP), *small = malloc(BATCH_CAP);
    mfs_vv empty = {0, NULL};
    ssize_t n = mfs_store_ops_since(a.s, &empty, full, BATCH_CAP);
    assert_true(n > 600);
    assert_int_equal(mfs_batch_prefix(full, 0, 100), 0);
    assert_int_equal(mfs_batch_prefix(full, (size_t)n, BATCH_CAP), n);
    size_t cuts = 0;
    for (size_t cap = 1; cap < (size_t)n + 8; cap++) {
        ssize_t p = mfs_batch_prefix(full, (size_t)n, cap);
        ssize_t m = mfs_store_ops_since(a.s, &empty, small, cap);
        assert_true(p > 0 && p <= n);
        if (m == -ENOBUFS) { /* the first action alone is larger */
            assert_true((size_t)p > cap);
            continue;
        }
        if (p != m)
            print_message("cap %zu: prefix %zd, ops_since %zd\n", cap, p, m);
        assert_int_equal(p, m);
        assert_memory_equal(full, small, (size_t)p);
        cuts += p < n;
    }
    assert_true(cuts > 10);
    /* a framing error is reported, as mfs_store_apply rejects it */
    uint8_t bad[8] = {0, 0, 0, 200, 1, 2, 3, 4};
    assert_int_equal(mfs_batch_prefix(bad, sizeof bad, 4), -EBADMSG);
    /* slices of ~100 bytes, applied in order */
    size_t off = 0, slices = 0;
    while (off < (size_t)n) {
        ssize_t p = mfs_batch_prefix(full + off, (size_t)n - off, 100);
        assert_true(p > 0);
        assert_int_equal(mfs_store_apply(b.s, full + off, (size_t)p, NULL), 0);
        off += (size_t)p;
        slices++;
    }
    assert_true(slices > 5);
    rep *h[1] = {&a};
    sync_chunks(b.s, h, 1);
    assert_same_dump(a.s, b.s);
    free(full);
    free(small);
    close2(&a, &b);
}

static void test_idempotent_any_order(void **state)
{
    (void)state;
    uint64_t seed = mfs_test_seed(1);
    rep a, ref;
    rep_open(&a, 1, 0xa1);
    rep_open(&ref, 0, 0xcc);
    build_tree(a.s);
    /* a second round of changes that depend on the first */
    uint64_t d = ino_of(a.s, MFS_ROOT_INO, "docs");
    put_pub(a.s, ino_of(a.s, d, "a.txt"), "alpha2");
    assert_int_equal(mfs_store_rename(a.s, MFS_ROOT_INO, "moved", d, "m2", 0),
                     0);
    assert_int_equal(mfs_store_unlink(a.s, MFS_ROOT_INO, "a-hard"), 0);
    sync_ops(a.s, ref.s);
    rep *h[1] = {&a};
    sync_chunks(ref.s, h, 1);
    assert_same_dump(a.s, ref.s);
    char *want = dump(ref.s);

    uint8_t *full = malloc(BATCH_CAP);
    ssize_t n = batch_for(a.s, ref.s, full, BATCH_CAP);
    assert_int_equal(n, 0);
    mfs_vv empty = {0, NULL};
    n = mfs_store_ops_since(a.s, &empty, full, BATCH_CAP);
    assert_true(n > 0);
    static opref ops[4096];
    size_t k = split_batch(full, (size_t)n, ops, 4096);
    assert_true(k > 10);

    for (int round = 0; round < 6; round++) {
        mfs_rng r;
        mfs_rng_seed(&r, seed + (uint64_t)round);
        rep b;
        rep_open(&b, 0, 0xb2);
        /* shuffled single ops, some applied twice, then the whole batch */
        size_t *perm = malloc(k * sizeof(*perm));
        for (size_t i = 0; i < k; i++)
            perm[i] = i;
        if (round == 0) {
            for (size_t i = 0; i < k / 2; i++) { /* reverse order */
                size_t t = perm[i];
                perm[i] = perm[k - 1 - i];
                perm[k - 1 - i] = t;
            }
        } else {
            for (size_t i = k - 1; i > 0; i--) {
                size_t j = (size_t)mfs_rng_below(&r, i + 1);
                size_t t = perm[i];
                perm[i] = perm[j];
                perm[j] = t;
            }
        }
        size_t applied = 0, dups = 0;
        for (size_t i = 0; i < k; i++) {
            mfs_apply_result res;
            const opref *o = &ops[perm[i]];
            int rc = mfs_store_apply(b.s, full + o->off, o->len, &res);
            if (rc)
                print_error("seed %llu round %d op %zu: %d\n",
                            (unsigned long long)seed, round, perm[i], rc);
            assert_int_equal(rc, 0);
            applied += res.applied;
            dups += res.duplicates;
            if (mfs_rng_below(&r, 4) == 0) {
                assert_int_equal(
                    mfs_store_apply(b.s, full + o->off, o->len, &res), 0);
                assert_int_equal(res.applied, 0);
                assert_int_equal(res.duplicates, 1);
            }
        }
        assert_int_equal(applied, k);
        assert_int_equal(dups, 0);
        mfs_apply_result res;
        char *before = dump(b.s);
        assert_int_equal(mfs_store_apply(b.s, full, (size_t)n, &res), 0);
        assert_int_equal(res.applied, 0);
        assert_int_equal(res.duplicates, k);
        char *after = dump(b.s);
        assert_string_equal(before, after);
        free(before);
        free(after);
        sync_chunks(b.s, h, 1);
        char *got = dump(b.s);
        if (strcmp(got, want))
            print_error("seed %llu round %d: order-dependent result\n--- in "
                        "order\n%s--- shuffled\n%s",
                        (unsigned long long)seed, round, want, got);
        assert_string_equal(got, want);
        free(got);
        vv_equal(a.s, b.s);
        free(perm);
        rep_close(&b);
    }
    free(want);
    free(full);
    rep_close(&a);
    rep_close(&ref);
}

/* Applies a bad batch to b and checks -EBADMSG with no change. */
static void expect_rejected(rep *b, const uint8_t *batch, size_t len,
                            const char *what, size_t detail)
{
    char *before = dump(b->s);
    mfs_vv v0, v1;
    assert_int_equal(mfs_store_vv(b->s, &v0), 0);
    mfs_apply_result res = {0};
    int rc = mfs_store_apply(b->s, batch, len, &res);
    if (rc != -EBADMSG)
        print_error("%s (%zu): apply returned %d, want -EBADMSG\n", what,
                    detail, rc);
    assert_int_equal(rc, -EBADMSG);
    char *after = dump(b->s);
    assert_int_equal(mfs_store_vv(b->s, &v1), 0);
    if (strcmp(before, after))
        print_error("%s (%zu): rejected batch changed the dump\n", what,
                    detail);
    assert_string_equal(before, after);
    assert_int_equal(mfs_vv_missing(&v0, &v1), 0);
    assert_int_equal(mfs_vv_missing(&v1, &v0), 0);
    mfs_vv_free(&v0);
    mfs_vv_free(&v1);
    free(before);
    free(after);
}

static void test_malformed(void **state)
{
    (void)state;
    uint64_t seed = mfs_test_seed(99);
    mfs_rng r;
    mfs_rng_seed(&r, seed);
    rep a, b;
    tree_and_empty(&a, &b);
    uint8_t *full = malloc(BATCH_CAP), *bad = malloc(BATCH_CAP + 64);
    ssize_t n = batch_for(a.s, b.s, full, BATCH_CAP);
    assert_true(n > 100);
    static opref ops[4096];
    size_t k = split_batch(full, (size_t)n, ops, 4096);

    /* truncations of the batch: every cut inside the first ops and a
     * sample of the rest */
    for (size_t cut = 1; cut < (size_t)n; cut++) {
        if (cut > 400 && mfs_rng_below(&r, 20))
            continue;
        int on_boundary = 0;
        for (size_t i = 0; i < k; i++)
            on_boundary |= ops[i].off == cut;
        if (on_boundary)
            continue; /* a shorter valid batch */
        expect_rejected(&b, full, cut, "truncated batch", cut);
    }
    /* length prefixes that lie */
    const uint32_t lies[] = {0, 1, 3, 0xffffffffu, 0x80000000u};
    for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
        memcpy(bad, full, (size_t)n);
        bad[0] = (uint8_t)(lies[i] >> 24);
        bad[1] = (uint8_t)(lies[i] >> 16);
        bad[2] = (uint8_t)(lies[i] >> 8);
        bad[3] = (uint8_t)lies[i];
        expect_rejected(&b, bad, (size_t)n, "bad length", lies[i]);
    }
    /* one op's length one too long / too short (eats into the next) */
    for (size_t i = 0; i < k && i < 8; i++) {
        for (int d = -1; d <= 1; d += 2) {
            memcpy(bad, full, (size_t)n);
            uint32_t l = (uint32_t)(ops[i].len - 4 + (size_t)(int64_t)d);
            uint8_t *p = bad + ops[i].off;
            p[0] = (uint8_t)(l >> 24);
            p[1] = (uint8_t)(l >> 16);
            p[2] = (uint8_t)(l >> 8);
            p[3] = (uint8_t)l;
            expect_rejected(&b, bad, (size_t)n, "op length off by one", i);
        }
    }
    /* an op with a trailing byte its fields do not account for */
    for (size_t i = 0; i < k; i++) {
        uint32_t l = (uint32_t)(ops[i].len - 4 + 1);
        bad[0] = (uint8_t)(l >> 24);
        bad[1] = (uint8_t)(l >> 16);
        bad[2] = (uint8_t)(l >> 8);
        bad[3] = (uint8_t)l;
        memcpy(bad + 4, full + ops[i].off + 4, l - 1);
        bad[4 + l - 1] = 0;
        expect_rejected(&b, bad, 4 + l, "op with a trailing byte", i);
    }
    /* a good batch followed by garbage is rejected whole */
    memcpy(bad, full, (size_t)n);
    memcpy(bad + n, "\0\0\0\x05zzzzz", 9);
    expect_rejected(&b, bad, (size_t)n + 9, "valid batch + garbage op", 0);
    memcpy(bad + n, "\0\0", 2);
    expect_rejected(&b, bad, (size_t)n + 2, "valid batch + 2 stray bytes", 0);
    /* random bytes */
    for (int i = 0; i < 200; i++) {
        size_t len = (size_t)mfs_rng_below(&r, 300) + 1;
        for (size_t j = 0; j < len; j++)
            bad[j] = (uint8_t)mfs_rng_next(&r);
        if (i % 2 && len > 4) { /* with a plausible length prefix */
            uint32_t l = (uint32_t)(len - 4);
            bad[0] = 0;
            bad[1] = 0;
            bad[2] = (uint8_t)(l >> 8);
            bad[3] = (uint8_t)l;
        }
        expect_rejected(&b, bad, len, "random bytes", (size_t)i);
    }
    /* single ops with bytes chopped off their end (length adjusted) */
    for (size_t i = 0; i < k; i++) {
        size_t ol = ops[i].len - 4;
        for (size_t cut = 1; cut < ol;
             cut += 1 + (size_t)mfs_rng_below(&r, 7)) {
            uint32_t l = (uint32_t)(ol - cut);
            bad[0] = (uint8_t)(l >> 24);
            bad[1] = (uint8_t)(l >> 16);
            bad[2] = (uint8_t)(l >> 8);
            bad[3] = (uint8_t)l;
            memcpy(bad + 4, full + ops[i].off + 4, l);
            expect_rejected(&b, bad, 4 + l, "op with truncated body",
                            i * 10000 + cut);
        }
    }
    /* Bit flips: a flip may still decode as a valid (different) op; then the
     * store may accept it, but must not crash, and a rejection must leave
     * no trace. Accepting replicas are thrown away. */
    int accepted = 0, rejected = 0;
    for (int i = 0; i < 300; i++) {
        size_t oi = (size_t)mfs_rng_below(&r, k);
        memcpy(bad, full + ops[oi].off, ops[oi].len);
        size_t bit = (size_t)mfs_rng_below(&r, (ops[oi].len - 4) * 8);
        bad[4 + bit / 8] ^= (uint8_t)(1u << (bit % 8));
        char *before = dump(b.s);
        int rc = mfs_store_apply(b.s, bad, ops[oi].len, NULL);
        char *after = dump(b.s);
        if (rc == -EBADMSG) {
            rejected++;
            if (strcmp(before, after))
                print_error("seed %llu: rejected flipped op %zu bit %zu "
                            "changed state\n",
                            (unsigned long long)seed, oi, bit);
            assert_string_equal(before, after);
        } else {
            if (rc != 0)
                print_error("seed %llu: flipped op %zu bit %zu: %d\n",
                            (unsigned long long)seed, oi, bit, rc);
            assert_int_equal(rc, 0);
            accepted++;
            rep_close(&b);
            rep_open(&b, 0, 0xb2);
        }
        free(before);
        free(after);
    }
    assert_true(rejected > 0);
    /* b still accepts the good batch afterwards */
    sync_ops(a.s, b.s);
    rep *h[1] = {&a};
    sync_chunks(b.s, h, 1);
    assert_same_dump(a.s, b.s);
    free(full);
    free(bad);
    close2(&a, &b);
}

/* Replaces every occurrence of pat (length-preserving) in buf. */
static int patch(uint8_t *buf, size_t n, const char *pat, const char *with,
                 size_t len)
{
    int hits = 0;
    for (size_t i = 0; i + len <= n; i++)
        if (!memcmp(buf + i, pat, len)) {
            memcpy(buf + i, with, len);
            hits++;
        }
    return hits;
}

static void test_remote_bad_names(void **state)
{
    (void)state;
    rep a, b;
    rep_open(&a, 1, 0xa1);
    rep_open(&b, 0, 0xb2);
    sync_ops(a.s, b.s);
    mkfile(a.s, MFS_ROOT_INO, "QqZzQq");
    mfs_attr at;
    assert_int_equal(
        mfs_store_symlink(a.s, MFS_ROOT_INO, "lnk", "TtXxTt", 0, 0, &at), 0);
    assert_int_equal(mfs_store_setxattr(a.s, at.ino, "user.KkYyKk", "v", 1, 0),
                     0);
    mkfile(a.s, MFS_ROOT_INO, "@@");
    uint8_t *full = malloc(BATCH_CAP), *bad = malloc(BATCH_CAP);
    ssize_t n = batch_for(a.s, b.s, full, BATCH_CAP);
    assert_true(n > 0);
    struct {
        const char *pat, *with;
        size_t len;
        const char *what;
    } cases[] = {
        {"QqZzQq", "Qq/zQq", 6, "entry name with '/'"},
        {"QqZzQq", "Qq\0zQq", 6, "entry name with NUL"},
        {"@@", "..", 2, "entry name '..'"},
        {"@@", "/.", 2, "entry name '/.'"},
        {"@@", "\0\0", 2, "entry name of NULs"},
        {"TtXxTt", "Tt\0xTt", 6, "symlink target with NUL"},
        {"user.KkYyKk", "user.K\0YyKk", 11, "xattr name with NUL"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        memcpy(bad, full, (size_t)n);
        int hits =
            patch(bad, (size_t)n, cases[i].pat, cases[i].with, cases[i].len);
        assert_true(hits >= 1);
        expect_rejected(&b, bad, (size_t)n, cases[i].what, i);
    }
    /* The unpatched batch applies. */
    mfs_apply_result res;
    assert_int_equal(mfs_store_apply(b.s, full, (size_t)n, &res), 0);
    assert_same_dump(a.s, b.s);
    free(full);
    free(bad);
    close2(&a, &b);
}

static void test_future_stamps(void **state)
{
    (void)state;
    rep a, b;
    mesh2(&a, &b);
    a.clk.ms = b.clk.ms + 10 * 60 * 1000; /* A is 10 minutes ahead */
    uint64_t f = mkfile(a.s, MFS_ROOT_INO, "future");
    put_pub(a.s, f, "from the future");
    char *bd0 = dump(b.s);
    mfs_vv v0;
    assert_int_equal(mfs_store_vv(b.s, &v0), 0);
    uint8_t *buf = malloc(BATCH_CAP);
    ssize_t n = batch_for(a.s, b.s, buf, BATCH_CAP);
    assert_true(n > 0);
    mfs_apply_result res = {0};
    assert_int_equal(mfs_store_apply(b.s, buf, (size_t)n, &res), 0);
    assert_true(res.deferred > 0);
    assert_int_equal(res.applied, 0);
    char *bd1 = dump(b.s);
    assert_string_equal(bd0, bd1);
    mfs_vv v1;
    assert_int_equal(mfs_store_vv(b.s, &v1), 0);
    assert_int_equal(mfs_vv_missing(&v1, &v0), 0);
    assert_int_equal(mfs_vv_missing(&v0, &v1), 0);
    /* B's own clock was not dragged forward by the refused stamps */
    uint64_t g = mkfile(b.s, MFS_ROOT_INO, "local");
    put_pub(b.s, g, "now");
    mfs_file_info fi;
    assert_int_equal(mfs_store_file_info(b.s, g, &fi, NULL, 0), 0);
    assert_true(fi.version.hlc >> 16 == b.clk.ms);
    /* still too far: 61 s short of A's stamps */
    b.clk.ms = a.clk.ms - 61000;
    n = batch_for(a.s, b.s, buf, BATCH_CAP);
    assert_int_equal(mfs_store_apply(b.s, buf, (size_t)n, &res), 0);
    assert_true(res.deferred > 0);
    assert_int_equal(res.applied, 0);
    mfs_attr at;
    assert_int_equal(mfs_store_lookup(b.s, MFS_ROOT_INO, "future", &at),
                     -ENOENT);
    /* within the 60 s bound now */
    b.clk.ms = a.clk.ms - 59000;
    n = batch_for(a.s, b.s, buf, BATCH_CAP);
    assert_int_equal(mfs_store_apply(b.s, buf, (size_t)n, &res), 0);
    assert_true(res.applied > 0);
    assert_int_equal(res.deferred, 0);
    merge(&a, &b);
    assert_string_equal(content(b.s, ino_of(b.s, MFS_ROOT_INO, "future")),
                        "from the future");
    free(bd0);
    free(bd1);
    mfs_vv_free(&v0);
    mfs_vv_free(&v1);
    free(buf);
    close2(&a, &b);
}

/* Finds names in dir starting with prefix and containing ".conflict-". */
static size_t conflicts_in(mfs_store *s, uint64_t dir, const char *stem,
                           dirlist *out)
{
    dirlist *l = list_dir(s, dir);
    out->n = 0;
    for (size_t i = 0; i < l->n; i++)
        if (!strncmp(l->v[i], stem, strlen(stem)) &&
            strstr(l->v[i], ".conflict-")) {
            snprintf(out->v[out->n], sizeof(out->v[0]), "%s", l->v[i]);
            out->ino[out->n++] = l->ino[i];
        }
    free(l);
    return out->n;
}

typedef struct pathlist {
    int n;
    char p[16][512];
} pathlist;

static void on_conflict(void *arg, const char *path)
{
    pathlist *l = arg;
    if (l->n < 16)
        snprintf(l->p[l->n], sizeof(l->p[0]), "%s", path);
    l->n++;
}

static void test_conflict_concurrent_edit(void **state)
{
    (void)state;
    rep a, b;
    mesh2(&a, &b);
    uint64_t fa = mkfile(a.s, MFS_ROOT_INO, "doc.txt");
    put_pub(a.s, fa, "base");
    sync_pair(&a, &b);
    uint64_t fb = ino_of(b.s, MFS_ROOT_INO, "doc.txt");
    assert_string_equal(content(b.s, fb), "base");
    /* both edit without seeing the other */
    a.clk.ms = T0 + 3000;
    b.clk.ms = T0 + 7000;
    put_pub(a.s, fa, "edit from A");
    put_pub(b.s, fb, "edit from B");
    merge(&a, &b);
    char ca[256], cb[256];
    mfs_conflict_name(ca, sizeof(ca), "doc.txt", a.node, T0 + 3000);
    mfs_conflict_name(cb, sizeof(cb), "doc.txt", b.node, T0 + 7000);
    rep *rs[2] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        mfs_store *s = rs[i]->s;
        dirlist cf;
        size_t nc = conflicts_in(s, MFS_ROOT_INO, "doc", &cf);
        if (nc != 1) {
            dirlist *l = list_dir(s, MFS_ROOT_INO);
            for (size_t j = 0; j < l->n; j++)
                print_error("replica %d: /%s\n", i, l->v[j]);
            free(l);
        }
        assert_int_equal(nc, 1);
        const char *main_txt = content(s, ino_of(s, MFS_ROOT_INO, "doc.txt"));
        const char *copy_txt = content(s, cf.ino[0]);
        if (!strcmp(main_txt, "edit from A")) {
            assert_string_equal(copy_txt, "edit from B");
            assert_string_equal(cf.v[0], cb);
        } else {
            assert_string_equal(main_txt, "edit from B");
            assert_string_equal(copy_txt, "edit from A");
            if (strcmp(cf.v[0], ca))
                print_error("conflict copy named '%s', want '%s'\n", cf.v[0],
                            ca);
            assert_string_equal(cf.v[0], ca);
        }
        mfs_file_info fi;
        assert_int_equal(mfs_store_file_info(s,
                                             ino_of(s, MFS_ROOT_INO, "doc.txt"),
                                             &fi, NULL, 0),
                         0);
        assert_int_equal(fi.heads, 2);
        mfs_store_stats st;
        assert_int_equal(mfs_store_stats_get(s, &st), 0);
        assert_int_equal(st.conflicts, 1);
        pathlist pl = {0};
        int rc = mfs_store_conflicts(s, on_conflict, &pl, 16);
        assert_true(rc == 0 || rc == 1); /* 0 per the convention, or a count */
        assert_int_equal(pl.n, 1);
        assert_non_null(strstr(pl.p[0], cf.v[0]));
    }
    /* Editing the main name again (on either side) is not a resolution:
     * the loser's copy must stay (P7, no silent loss). */
    dirlist before;
    conflicts_in(a.s, MFS_ROOT_INO, "doc", &before);
    char copy_name[MFS_NAME_MAX + 1];
    snprintf(copy_name, sizeof(copy_name), "%s", before.v[0]);
    char copy_txt[64];
    snprintf(copy_txt, sizeof(copy_txt), "%s", content(a.s, before.ino[0]));
    a.clk.ms += 1000;
    put_pub(a.s, ino_of(a.s, MFS_ROOT_INO, "doc.txt"), "A edits again");
    b.clk.ms += 2000;
    put_pub(b.s, ino_of(b.s, MFS_ROOT_INO, "doc.txt"), "B edits again");
    merge(&a, &b);
    for (int i = 0; i < 2; i++) {
        mfs_attr at;
        int rc = mfs_store_lookup(rs[i]->s, MFS_ROOT_INO, copy_name, &at);
        if (rc)
            print_error("replica %d: conflict copy %s vanished after the main "
                        "file was edited again (%d)\n",
                        i, copy_name, rc);
        assert_int_equal(rc, 0);
        assert_string_equal(content(rs[i]->s, at.ino), copy_txt);
    }
    /* the new concurrent pair is a second conflict: 2 copies now */
    for (int i = 0; i < 2; i++) {
        dirlist c3;
        assert_int_equal(conflicts_in(rs[i]->s, MFS_ROOT_INO, "doc", &c3), 2);
    }

    /* resolving: A deletes the conflict copies; gone on both, main stays */
    dirlist cf;
    conflicts_in(a.s, MFS_ROOT_INO, "doc", &cf);
    const char *winner = content(a.s, ino_of(a.s, MFS_ROOT_INO, "doc.txt"));
    char keep[64];
    snprintf(keep, sizeof(keep), "%s", winner);
    for (size_t i = 0; i < cf.n; i++)
        assert_int_equal(mfs_store_unlink(a.s, MFS_ROOT_INO, cf.v[i]), 0);
    merge(&a, &b);
    for (int i = 0; i < 2; i++) {
        dirlist c2;
        assert_int_equal(conflicts_in(rs[i]->s, MFS_ROOT_INO, "doc", &c2), 0);
        assert_string_equal(
            content(rs[i]->s, ino_of(rs[i]->s, MFS_ROOT_INO, "doc.txt")), keep);
        mfs_store_stats st;
        assert_int_equal(mfs_store_stats_get(rs[i]->s, &st), 0);
        assert_int_equal(st.conflicts, 0);
    }
    close2(&a, &b);
}

static void test_conflict_same_name_create(void **state)
{
    (void)state;
    rep a, b;
    mesh2(&a, &b);
    uint64_t da = mkdir_(a.s, MFS_ROOT_INO, "shared");
    sync_pair(&a, &b);
    uint64_t db = ino_of(b.s, MFS_ROOT_INO, "shared");
    a.clk.ms += 1000;
    b.clk.ms += 2000;
    put_pub(a.s, mkfile(a.s, da, "new.txt"), "A's file");
    put_pub(b.s, mkfile(b.s, db, "new.txt"), "B's file");
    /* and two directories of the same name, each with a child */
    mkfile(a.s, mkdir_(a.s, da, "dir"), "in-a");
    mkfile(b.s, mkdir_(b.s, db, "dir"), "in-b");
    merge(&a, &b);
    rep *rs[2] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        mfs_store *s = rs[i]->s;
        uint64_t d = ino_of(s, MFS_ROOT_INO, "shared");
        dirlist *l = list_dir(s, d);
        int have_a = 0, have_b = 0, dirs = 0, in_a = 0, in_b = 0;
        for (size_t j = 0; j < l->n; j++) {
            mfs_attr at;
            assert_int_equal(mfs_store_getattr(s, l->ino[j], &at), 0);
            if (S_ISREG(at.mode)) {
                const char *t = content(s, l->ino[j]);
                have_a += !strcmp(t, "A's file");
                have_b += !strcmp(t, "B's file");
            } else if (S_ISDIR(at.mode)) {
                dirs++;
                mfs_attr x;
                in_a += mfs_store_lookup(s, l->ino[j], "in-a", &x) == 0;
                in_b += mfs_store_lookup(s, l->ino[j], "in-b", &x) == 0;
            }
        }
        if (have_a != 1 || have_b != 1 || in_a != 1 || in_b != 1)
            for (size_t j = 0; j < l->n; j++)
                print_error("replica %d: shared/%s\n", i, l->v[j]);
        assert_int_equal(have_a, 1);
        assert_int_equal(have_b, 1);
        assert_int_equal(in_a, 1);
        assert_int_equal(in_b, 1);
        assert_true(dirs == 1 || dirs == 2); /* merged or side by side */
        mfs_attr x;
        assert_int_equal(mfs_store_lookup(s, d, "new.txt", &x), 0);
        free(l);
    }
    close2(&a, &b);
}

static void test_edit_vs_delete(void **state)
{
    (void)state;
    rep a, b;
    mesh2(&a, &b);
    uint64_t d = mkdir_(a.s, MFS_ROOT_INO, "d");
    put_pub(a.s, mkfile(a.s, d, "e.txt"), "v1");
    sync_pair(&a, &b);
    /* A edits, B deletes without having seen the edit */
    a.clk.ms += 1000;
    b.clk.ms += 2000; /* the delete is even later */
    put_pub(a.s, ino_of(a.s, d, "e.txt"), "v2 from A");
    uint64_t bd = ino_of(b.s, MFS_ROOT_INO, "d");
    assert_int_equal(mfs_store_unlink(b.s, bd, "e.txt"), 0);
    merge(&a, &b);
    rep *rs[2] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        mfs_store *s = rs[i]->s;
        uint64_t dd = ino_of(s, MFS_ROOT_INO, "d");
        mfs_attr at;
        int rc = mfs_store_lookup(s, dd, "e.txt", &at);
        if (rc)
            print_error("replica %d: edited file not back after a concurrent "
                        "delete (%d)\n",
                        i, rc);
        assert_int_equal(rc, 0);
        assert_string_equal(content(s, at.ino), "v2 from A");
    }
    /* Now B, having seen v2, deletes again: that sticks. */
    b.clk.ms += 1000;
    assert_int_equal(
        mfs_store_unlink(b.s, ino_of(b.s, MFS_ROOT_INO, "d"), "e.txt"), 0);
    merge(&a, &b);
    for (int i = 0; i < 2; i++) {
        mfs_attr at;
        assert_int_equal(mfs_store_lookup(rs[i]->s,
                                          ino_of(rs[i]->s, MFS_ROOT_INO, "d"),
                                          "e.txt", &at),
                         -ENOENT);
        dirlist *l = list_dir(rs[i]->s, ino_of(rs[i]->s, MFS_ROOT_INO, "lost+found"));
        assert_int_equal(l->n, 0);
        free(l);
    }
    close2(&a, &b);
}

/* f and g name one file. B removes f, then writes through g: f stays
 * deleted on both (it came back before: B's new version was none the
 * delete had seen). A's edit concurrent with a second delete brings that
 * name back on both, and B's next edit (it sees the name back) does not
 * hide it again. */
static void test_edit_after_hardlink_delete(void **state)
{
    (void)state;
    rep a, b;
    mesh2(&a, &b);
    uint64_t f = mkfile(a.s, MFS_ROOT_INO, "f");
    put_pub(a.s, f, "v1");
    mfs_attr at;
    assert_int_equal(mfs_store_link(a.s, f, MFS_ROOT_INO, "g", &at), 0);
    assert_int_equal(mfs_store_link(a.s, f, MFS_ROOT_INO, "h", &at), 0);
    sync_pair(&a, &b);
    b.clk.ms += 1000;
    assert_int_equal(mfs_store_unlink(b.s, MFS_ROOT_INO, "f"), 0);
    b.clk.ms += 1000;
    put_pub(b.s, ino_of(b.s, MFS_ROOT_INO, "g"), "v2 from B");
    merge(&a, &b);
    rep *rs[2] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        mfs_store *s = rs[i]->s;
        assert_int_equal(mfs_store_lookup(s, MFS_ROOT_INO, "f", &at), -ENOENT);
        assert_string_equal(content(s, ino_of(s, MFS_ROOT_INO, "g")),
                            "v2 from B");
        assert_int_equal(mfs_store_getattr(s, ino_of(s, MFS_ROOT_INO, "g"), &at),
                         0);
        assert_int_equal(at.nlink, 2);
    }
    /* B removes h while A, not having seen that, edits: h comes back */
    b.clk.ms += 1000;
    assert_int_equal(mfs_store_unlink(b.s, MFS_ROOT_INO, "h"), 0);
    a.clk.ms += 1000;
    put_pub(a.s, ino_of(a.s, MFS_ROOT_INO, "g"), "v3 from A");
    merge(&a, &b);
    for (int i = 0; i < 2; i++)
        assert_int_equal(mfs_store_lookup(rs[i]->s, MFS_ROOT_INO, "h", &at), 0);
    /* B's next edit, made while h shows, leaves it showing */
    b.clk.ms += 1000;
    put_pub(b.s, ino_of(b.s, MFS_ROOT_INO, "g"), "v4 from B");
    merge(&a, &b);
    for (int i = 0; i < 2; i++) {
        mfs_store *s = rs[i]->s;
        assert_int_equal(mfs_store_lookup(s, MFS_ROOT_INO, "h", &at), 0);
        assert_string_equal(content(s, at.ino), "v4 from B");
        assert_int_equal(mfs_store_lookup(s, MFS_ROOT_INO, "f", &at), -ENOENT);
    }
    close2(&a, &b);
}

static void test_edit_vs_delete_dir(void **state)
{
    (void)state;
    rep a, b;
    mesh2(&a, &b);
    uint64_t d = mkdir_(a.s, MFS_ROOT_INO, "d");
    put_pub(a.s, mkfile(a.s, d, "e.txt"), "v1");
    sync_pair(&a, &b);
    a.clk.ms += 1000;
    b.clk.ms += 2000;
    put_pub(a.s, ino_of(a.s, d, "e.txt"), "v2 from A");
    uint64_t bd = ino_of(b.s, MFS_ROOT_INO, "d");
    assert_int_equal(mfs_store_unlink(b.s, bd, "e.txt"), 0);
    assert_int_equal(mfs_store_rmdir(b.s, MFS_ROOT_INO, "d"), 0);
    merge(&a, &b);
    rep *rs[2] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        mfs_store *s = rs[i]->s;
        mfs_attr at;
        uint64_t where;
        if (mfs_store_lookup(s, MFS_ROOT_INO, "d", &at) == 0)
            where = at.ino; /* the directory came back too */
        else
            where = ino_of(s, MFS_ROOT_INO, "lost+found");
        int rc = mfs_store_lookup(s, where, "e.txt", &at);
        if (rc) {
            dirlist *l = list_dir(s, where);
            print_error("replica %d: e.txt not in %s (%zu entries)\n", i,
                        where == ino_of(s, MFS_ROOT_INO, "lost+found")
                            ? "lost+found"
                            : "d",
                        l->n);
            for (size_t j = 0; j < l->n; j++)
                print_error("  %s\n", l->v[j]);
            free(l);
        }
        assert_int_equal(rc, 0);
        assert_string_equal(content(s, at.ino), "v2 from A");
    }
    close2(&a, &b);
}

/* Depth-first walk; fails on a directory seen twice (cycle or duplicate). */
typedef struct walk {
    uint64_t seen[1024];
    size_t nseen;
    size_t entries;
} walk;

static void walk_dir(mfs_store *s, uint64_t dir, walk *w, int depth)
{
    assert_true(depth < 64);
    for (size_t i = 0; i < w->nseen; i++)
        if (w->seen[i] == dir)
            fail_msg("directory ino %llu reached twice",
                     (unsigned long long)dir);
    assert_true(w->nseen < 1024);
    w->seen[w->nseen++] = dir;
    dirlist *l = list_dir(s, dir);
    for (size_t i = 0; i < l->n; i++) {
        w->entries++;
        mfs_attr at;
        assert_int_equal(mfs_store_getattr(s, l->ino[i], &at), 0);
        if (S_ISDIR(at.mode)) {
            uint64_t p;
            assert_int_equal(mfs_store_parent(s, l->ino[i], &p), 0);
            assert_int_equal(p, dir);
            walk_dir(s, l->ino[i], w, depth + 1);
        }
    }
    free(l);
}

static void test_rename_cycle(void **state)
{
    (void)state;
    rep a, b;
    mesh2(&a, &b);
    mkdir_(a.s, MFS_ROOT_INO, "x");
    mkdir_(a.s, MFS_ROOT_INO, "y");
    mkfile(a.s, ino_of(a.s, MFS_ROOT_INO, "x"), "fx");
    mkfile(a.s, ino_of(a.s, MFS_ROOT_INO, "y"), "fy");
    sync_pair(&a, &b);
    a.clk.ms += 1000;
    b.clk.ms += 2000;
    assert_int_equal(mfs_store_rename(a.s, MFS_ROOT_INO, "x",
                                      ino_of(a.s, MFS_ROOT_INO, "y"), "x", 0),
                     0);
    assert_int_equal(mfs_store_rename(b.s, MFS_ROOT_INO, "y",
                                      ino_of(b.s, MFS_ROOT_INO, "x"), "y", 0),
                     0);
    merge(&a, &b);
    rep *rs[2] = {&a, &b};
    for (int i = 0; i < 2; i++) {
        mfs_store *s = rs[i]->s;
        walk w = {0};
        walk_dir(s, MFS_ROOT_INO, &w, 0);
        /* root: lost+found, one of x/y; inside: the other, fx, fy */
        assert_int_equal(w.entries, 5);
        mfs_attr at;
        int x_top = mfs_store_lookup(s, MFS_ROOT_INO, "x", &at) == 0;
        int y_top = mfs_store_lookup(s, MFS_ROOT_INO, "y", &at) == 0;
        assert_int_equal(x_top + y_top, 1);
        /* the later move (B's: y into x) loses: A's wins */
        assert_true(y_top);
        uint64_t y = ino_of(s, MFS_ROOT_INO, "y");
        uint64_t x = ino_of(s, y, "x");
        ino_of(s, x, "fx");
        ino_of(s, y, "fy");
    }
    /* concurrent moves of one file: one location on both, the later wins */
    mkdir_(a.s, MFS_ROOT_INO, "d1");
    mkdir_(a.s, MFS_ROOT_INO, "d2");
    mkfile(a.s, MFS_ROOT_INO, "f");
    sync_pair(&a, &b);
    a.clk.ms += 5000;
    b.clk.ms += 6000;
    assert_int_equal(mfs_store_rename(a.s, MFS_ROOT_INO, "f",
                                      ino_of(a.s, MFS_ROOT_INO, "d1"), "f", 0),
                     0);
    assert_int_equal(mfs_store_rename(b.s, MFS_ROOT_INO, "f",
                                      ino_of(b.s, MFS_ROOT_INO, "d2"), "g", 0),
                     0);
    merge(&a, &b);
    for (int i = 0; i < 2; i++) {
        mfs_store *s = rs[i]->s;
        mfs_attr at;
        assert_int_equal(
            mfs_store_lookup(s, ino_of(s, MFS_ROOT_INO, "d1"), "f", &at),
            -ENOENT);
        assert_int_equal(mfs_store_lookup(s, MFS_ROOT_INO, "f", &at), -ENOENT);
        assert_int_equal(
            mfs_store_lookup(s, ino_of(s, MFS_ROOT_INO, "d2"), "g", &at), 0);
        assert_int_equal(at.nlink, 1);
    }
    close2(&a, &b);
}

static void test_unlinked_temp_never_replicates(void **state)
{
    (void)state;
    rep a, b;
    mesh2(&a, &b);
    uint64_t t = mkfile(a.s, MFS_ROOT_INO, ".tmp-save");
    static uint8_t blk[MFS_CHUNK_SIZE];
    memset(blk, 'T', sizeof(blk));
    assert_int_equal(mfs_store_write(a.s, t, 0, blk, sizeof(blk)),
                     (ssize_t)sizeof(blk));
    assert_int_equal(mfs_store_unlink(a.s, MFS_ROOT_INO, ".tmp-save"), 0);
    assert_int_equal(mfs_store_publish(a.s, t), 0);
    /* still readable through the open handle (store.h: until forget) */
    char c;
    assert_int_equal(mfs_store_read(a.s, t, 100, &c, 1), 1);
    assert_int_equal(c, 'T');
    mfs_store_forget(a.s, t);
    mfs_store_stats st;
    assert_int_equal(mfs_store_stats_get(a.s, &st), 0);
    if (st.dirty_files)
        print_error("unlinked file published and forgotten: dirty_files %llu\n",
                    (unsigned long long)st.dirty_files);
    assert_int_equal(st.dirty_files, 0);
    assert_int_equal(mfs_store_publish_all(a.s, 0), 0);
    sync_ops(a.s, b.s);
    uint8_t h[MFS_HASH_LEN];
    assert_int_equal(mfs_store_chunks_wanted(b.s, h, 1), 0);
    assert_same_dump(a.s, b.s);
    /* an editor's atomic save: write temp, rename over the target */
    uint64_t doc = mkfile(a.s, MFS_ROOT_INO, "doc");
    put_pub(a.s, doc, "old");
    sync_pair(&a, &b);
    uint64_t tmp = mkfile(a.s, MFS_ROOT_INO, "doc.swp");
    assert_int_equal(mfs_store_write(a.s, tmp, 0, "new", 3), 3);
    assert_int_equal(mfs_store_fsync(a.s, tmp), 0);
    assert_int_equal(
        mfs_store_rename(a.s, MFS_ROOT_INO, "doc.swp", MFS_ROOT_INO, "doc", 0),
        0);
    merge(&a, &b);
    assert_string_equal(content(b.s, ino_of(b.s, MFS_ROOT_INO, "doc")), "new");
    dirlist cf;
    assert_int_equal(conflicts_in(b.s, MFS_ROOT_INO, "doc", &cf), 0);
    close2(&a, &b);
}

static void test_attr_xattr_lww(void **state)
{
    (void)state;
    rep a, b;
    mesh2(&a, &b);
    uint64_t fa = mkfile(a.s, MFS_ROOT_INO, "f");
    sync_pair(&a, &b);
    uint64_t fb = ino_of(b.s, MFS_ROOT_INO, "f");
    a.clk.ms += 1000;
    b.clk.ms += 2000; /* B's changes are later */
    mfs_setattr sa = {.mask = MFS_SET_MODE, .mode = 0600};
    mfs_attr at;
    assert_int_equal(mfs_store_setattr(a.s, fa, &sa, &at), 0);
    sa.mode = 0640;
    assert_int_equal(mfs_store_setattr(b.s, fb, &sa, &at), 0);
    sa.mask = MFS_SET_UID; /* only A touches uid */
    sa.uid = 555;
    assert_int_equal(mfs_store_setattr(a.s, fa, &sa, &at), 0);
    assert_int_equal(mfs_store_setxattr(a.s, fa, "user.x", "A", 1, 0), 0);
    assert_int_equal(mfs_store_setxattr(b.s, fb, "user.x", "B", 1, 0), 0);
    assert_int_equal(mfs_store_setxattr(a.s, fa, "user.only-a", "1", 1, 0), 0);
    merge(&a, &b);
    assert_int_equal(mfs_store_getattr(a.s, fa, &at), 0);
    assert_int_equal(at.mode, S_IFREG | 0640);
    assert_int_equal(at.uid, 555); /* per-field registers */
    char v[4];
    assert_int_equal(mfs_store_getxattr(a.s, fa, "user.x", v, sizeof(v)), 1);
    assert_int_equal(v[0], 'B');
    assert_int_equal(mfs_store_getxattr(b.s, fb, "user.only-a", v, sizeof(v)),
                     1);
    /* a later remove wins over an earlier set */
    b.clk.ms += 1000;
    assert_int_equal(mfs_store_removexattr(b.s, fb, "user.only-a"), 0);
    sync_pair(&a, &b);
    assert_int_equal(mfs_store_getxattr(a.s, fa, "user.only-a", v, sizeof(v)),
                     -ENODATA);
    assert_same_dump(a.s, b.s);
    close2(&a, &b);
}

/* Applying remote ops must grow the map like local writes do. */
static void test_apply_grows_map(void **state)
{
    (void)state;
    rep a, b;
    rep_open(&a, 1, 0xa1);
    /* b: a joining replica with a 1 MiB map */
    memset(&b, 0, sizeof(b));
    reg(&b, 1);
    b.dir = mfs_test_mkdtemp("rep");
    b.clk.ms = T0;
    mfs_store_config cfg;
    mfs_test_store_config(&cfg, &b.clk);
    cfg.map_size = 1 << 20;
    assert_int_equal(mfs_store_open(&b.s, b.dir, &cfg, MFS_STORE_CREATE), 0);
    reg_sync(&b);
    b.node = mfs_store_node_id(b.s);
    assert_int_equal(mfs_store_group_begin(a.s), 0);
    static uint8_t blk[8192];
    for (int d = 0; d < 20; d++) {
        char n[32];
        snprintf(n, sizeof(n), "dir%02d", d);
        uint64_t dir = mkdir_(a.s, MFS_ROOT_INO, n);
        for (int f = 0; f < 100; f++) {
            snprintf(n, sizeof(n), "file%03d", f);
            uint64_t ino = mkfile(a.s, dir, n);
            memset(blk, d * 100 + f, sizeof(blk));
            blk[0] = (uint8_t)d;
            blk[1] = (uint8_t)f;
            assert_int_equal(mfs_store_write(a.s, ino, 0, blk, sizeof(blk)),
                             (ssize_t)sizeof(blk));
            assert_int_equal(mfs_store_publish(a.s, ino), 0);
        }
    }
    assert_int_equal(mfs_store_group_end(a.s), 0);
    /* ops in 64 KiB batches, then ~16 MiB of chunks */
    uint8_t *buf = malloc(65536);
    for (int guard = 0; guard < 100000; guard++) {
        ssize_t n = batch_for(a.s, b.s, buf, 65536);
        if (n == 0)
            break;
        int rc = mfs_store_apply(b.s, buf, (size_t)n, NULL);
        if (rc)
            print_error("apply into a 1 MiB map: %d\n", rc);
        assert_int_equal(rc, 0);
    }
    free(buf);
    rep *h[1] = {&a};
    sync_chunks(b.s, h, 1);
    uint8_t want[MFS_HASH_LEN];
    assert_int_equal(mfs_store_chunks_wanted(b.s, want, 1), 0);
    assert_same_dump(a.s, b.s);
    close2(&a, &b);
}

/* ---- collection (DESIGN P9) -------------------------------------------- */

/* A store alone: everything it holds is settled. */
static void settle_alone(rep *r)
{
    mfs_vv vv;
    assert_int_equal(mfs_store_vv(r->s, &vv), 0);
    mfs_store_collect_settled(r->s, &vv);
    mfs_vv_free(&vv);
}

static void set_retention(rep *r, uint64_t ms)
{
    mfs_collect_config cc = {.retention_ms = ms};
    mfs_store_collect_set(r->s, &cc);
}

static uint64_t chunk_bytes(mfs_store *s)
{
    mfs_store_stats st;
    assert_int_equal(mfs_store_stats_get(s, &st), 0);
    return st.chunk_bytes;
}

/* n bytes no earlier call gave (every chunk differs), none of them zero
 * (no chunk loses trailing zeros: the bytes held are the bytes written,
 * however the content is cut) */
static void unique_bytes(uint8_t *b, size_t n)
{
    static uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < n; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(b + i, &x, n - i < 8 ? n - i : 8);
    }
    for (size_t i = 0; i < n; i++)
        b[i] += !b[i];
}

static void put_content(mfs_store *s, uint64_t ino, const uint8_t *b, size_t n)
{
    assert_int_equal(mfs_store_write(s, ino, 0, b, n), (ssize_t)n);
    assert_int_equal(mfs_store_publish(s, ino), 0);
}

static void assert_content(mfs_store *s, uint64_t ino, const uint8_t *b,
                           size_t n)
{
    uint8_t *got = malloc(n + 1);
    assert_non_null(got);
    assert_int_equal(mfs_store_read(s, ino, 0, got, n + 1), (ssize_t)n);
    assert_memory_equal(got, b, n);
    free(got);
}

static mfs_collect_stats collect_later(rep *r, uint64_t ms)
{
    r->clk.ms += ms;
    mfs_collect_stats st;
    int rc = mfs_store_collect_now(r->s, &st);
    if (rc)
        print_error("collect: %d\n", rc);
    assert_int_equal(rc, 0);
    return st;
}

#define MIB (1u << 20)

/* The issue's case: a 1 MiB file written 20 times, then deleted. With a
 * retention of 0 the store keeps one version's chunks, then none. */
static void test_collect_overwrites_then_delete(void **state)
{
    (void)state;
    rep a;
    rep_open(&a, 1, 0);
    set_retention(&a, 0);
    uint64_t ino = mkfile(a.s, MFS_ROOT_INO, "f");
    uint8_t *b = malloc(MIB);
    for (int i = 0; i < 20; i++) {
        unique_bytes(b, MIB);
        put_content(a.s, ino, b, MIB);
        a.clk.ms += 10;
    }
    assert_int_equal(chunk_bytes(a.s), 20ull * MIB);
    /* nothing settled yet: nothing goes */
    mfs_collect_stats st = collect_later(&a, 5000);
    assert_int_equal(st.settled, 0);
    assert_int_equal(chunk_bytes(a.s), 20ull * MIB);
    settle_alone(&a);
    st = collect_later(&a, 0);
    assert_int_equal(st.versions, 19);
    assert_int_equal(st.chunk_bytes, 19ull * MIB);
    assert_int_equal(chunk_bytes(a.s), 1ull * MIB);
    assert_content(a.s, ino, b, MIB);
    /* a second pass finds nothing */
    st = collect_later(&a, 5000);
    assert_int_equal(st.versions, 0);
    assert_int_equal(st.chunks, 0);
    assert_int_equal(mfs_store_unlink(a.s, MFS_ROOT_INO, "f"), 0);
    settle_alone(&a);
    st = collect_later(&a, 5000);
    assert_int_equal(st.inodes, 1);
    assert_int_equal(chunk_bytes(a.s), 0);
    /* it survives a reopen, and the dump is that of an empty tree */
    rep_reopen(&a);
    assert_int_equal(chunk_bytes(a.s), 0);
    free(b);
    rep_close(&a);
}

/* Trash: what was overwritten or deleted stays for the retention, counted
 * from the time of the change that made it garbage. */
static void test_collect_retention(void **state)
{
    (void)state;
    rep a;
    rep_open(&a, 1, 0);
    set_retention(&a, 3600 * 1000);
    uint64_t ino = mkfile(a.s, MFS_ROOT_INO, "f");
    uint8_t *b = malloc(MIB);
    unique_bytes(b, MIB);
    put_content(a.s, ino, b, MIB);
    unique_bytes(b, MIB);
    put_content(a.s, ino, b, MIB);
    settle_alone(&a);
    mfs_collect_stats st = collect_later(&a, 3500 * 1000);
    assert_int_equal(st.versions, 0);
    assert_int_equal(chunk_bytes(a.s), 2ull * MIB);
    st = collect_later(&a, 200 * 1000);
    assert_int_equal(st.versions, 1);
    assert_int_equal(chunk_bytes(a.s), 1ull * MIB);
    assert_content(a.s, ino, b, MIB);
    free(b);
    rep_close(&a);
}

/* A change not yet settled holds collection back, and says whose it is. */
static void test_collect_waits_for_settled(void **state)
{
    (void)state;
    rep a, b;
    mesh2(&a, &b);
    set_retention(&a, 0);
    mfs_vv before;
    assert_int_equal(mfs_store_vv(a.s, &before), 0);
    uint64_t ino = mkfile(a.s, MFS_ROOT_INO, "f");
    uint8_t *d = malloc(MIB);
    unique_bytes(d, MIB);
    put_content(a.s, ino, d, MIB);
    unique_bytes(d, MIB);
    put_content(a.s, ino, d, MIB);
    /* b has not got it: a's settled vector is what both held before */
    mfs_store_collect_settled(a.s, &before);
    mfs_collect_stats st = collect_later(&a, 5000);
    assert_int_equal(st.versions, 0);
    assert_true(st.held_back >= 1);
    assert_int_equal(st.held_origin, a.node);
    assert_int_equal(chunk_bytes(a.s), 2ull * MIB);
    sync_pair(&a, &b);
    settle_alone(&a); /* b holds all a holds now */
    st = collect_later(&a, 0);
    assert_int_equal(st.versions, 1);
    assert_int_equal(chunk_bytes(a.s), 1ull * MIB);
    mfs_vv_free(&before);
    free(d);
    close2(&a, &b);
}

/* An open file keeps the version it reads: a remote overwrite does not
 * take it away until the file is closed; an unlinked open file keeps its
 * content. */
static void test_collect_keeps_pinned(void **state)
{
    (void)state;
    rep a, b;
    mesh2(&a, &b);
    set_retention(&b, 0);
    uint64_t ia = mkfile(a.s, MFS_ROOT_INO, "f");
    uint8_t *v1 = malloc(MIB), *v2 = malloc(MIB), *got = malloc(MIB);
    unique_bytes(v1, MIB);
    put_content(a.s, ia, v1, MIB);
    sync_pair(&a, &b);
    mfs_attr at;
    assert_int_equal(mfs_store_lookup(b.s, MFS_ROOT_INO, "f", &at), 0);
    mfs_stamp pin;
    assert_int_equal(mfs_store_version_current(b.s, at.ino, &pin), 0);
    int key = 0;
    assert_int_equal(mfs_store_pin_set(b.s, &key, at.ino, pin), 0);
    unique_bytes(v2, MIB);
    put_content(a.s, ia, v2, MIB);
    sync_pair(&a, &b);
    settle_alone(&b);
    mfs_collect_stats st = collect_later(&b, 5000);
    assert_int_equal(st.versions, 0);
    assert_true(st.pinned >= 1);
    mfs_stamp p = pin;
    assert_int_equal(mfs_store_read_pinned(b.s, at.ino, &p, 0, got, MIB),
                     (ssize_t)MIB);
    assert_memory_equal(got, v1, MIB);
    assert_content(b.s, at.ino, v2, MIB);
    mfs_store_pin_drop(b.s, &key);
    st = collect_later(&b, 0);
    assert_int_equal(st.versions, 1);
    assert_int_equal(chunk_bytes(b.s), 1ull * MIB);
    /* unlinked while open */
    assert_int_equal(mfs_store_version_current(b.s, at.ino, &pin), 0);
    assert_int_equal(mfs_store_pin_set(b.s, &key, at.ino, pin), 0);
    assert_int_equal(mfs_store_unlink(b.s, MFS_ROOT_INO, "f"), 0);
    settle_alone(&b);
    st = collect_later(&b, 5000);
    assert_int_equal(st.inodes, 0);
    assert_int_equal(mfs_store_read(b.s, at.ino, 0, got, MIB), (ssize_t)MIB);
    assert_memory_equal(got, v2, MIB);
    mfs_store_pin_drop(b.s, &key);
    st = collect_later(&b, 0);
    assert_int_equal(st.inodes, 1);
    assert_int_equal(chunk_bytes(b.s), 0);
    free(v1);
    free(v2);
    free(got);
    close2(&a, &b);
}

/* A chunk two files share stays while either names it. */
/* Tombstones (issue 10): once a delete is settled and its content
 * collected, the deleted file's names, its logged moves (renames too),
 * xattrs and inode record go; live files keep their names and records,
 * and their logged moves go once settled (no undo reaches them). A
 * deleted directory goes as well. The dump
 * and the live file's content do not change. */
/* The kernel holds g7's number (as fs/ would say) until it forgets it. */
static uint64_t g_busy_ino;
static bool busy_ino(void *arg, uint64_t ino)
{
    (void)arg;
    return ino == g_busy_ino;
}

static bool busy_all(void *arg, uint64_t ino)
{
    (void)arg;
    (void)ino;
    return true;
}

static void test_collect_tombstones(void **state)
{
    (void)state;
    rep a;
    rep_open(&a, 1, 0);
    set_retention(&a, 0);
    mfs_store_set_ino_busy_cb(a.s, busy_ino, NULL);
    uint64_t keep = mkfile(a.s, MFS_ROOT_INO, "keep");
    uint8_t b[100];
    unique_bytes(b, sizeof b);
    put_content(a.s, keep, b, sizeof b);
    mfs_store_stats s0, s1;
    assert_int_equal(mfs_store_stats_get(a.s, &s0), 0);
    for (int i = 0; i < 100; i++) {
        char n[16], m[16];
        snprintf(n, sizeof n, "f%d", i);
        snprintf(m, sizeof m, "g%d", i);
        uint64_t ino = mkfile(a.s, MFS_ROOT_INO, n);
        put_content(a.s, ino, b, sizeof b);
        assert_int_equal(mfs_store_setxattr(a.s, ino, "user.x", "1", 1, 0), 0);
        assert_int_equal(
            mfs_store_rename(a.s, MFS_ROOT_INO, n, MFS_ROOT_INO, m, 0), 0);
    }
    uint64_t d = mkdir_(a.s, MFS_ROOT_INO, "d");
    mkfile(a.s, d, "x");
    /* a live file renamed 50 times: its undo history goes too, all but
     * the move that put it where it is */
    for (int i = 0; i < 25; i++) {
        assert_int_equal(mfs_store_rename(a.s, MFS_ROOT_INO, "keep",
                                          MFS_ROOT_INO, "keep2", 0),
                         0);
        assert_int_equal(mfs_store_rename(a.s, MFS_ROOT_INO, "keep2",
                                          MFS_ROOT_INO, "keep", 0),
                         0);
    }
    assert_int_equal(mfs_store_stats_get(a.s, &s1), 0);
    assert_true(s1.move_records >= s0.move_records + 252);
    g_busy_ino = ino_of(a.s, MFS_ROOT_INO, "g7");
    for (int i = 0; i < 100; i++) {
        char m[16];
        snprintf(m, sizeof m, "g%d", i);
        assert_int_equal(mfs_store_unlink(a.s, MFS_ROOT_INO, m), 0);
    }
    assert_int_equal(mfs_store_unlink(a.s, d, "x"), 0);
    assert_int_equal(mfs_store_rmdir(a.s, MFS_ROOT_INO, "d"), 0);
    settle_alone(&a);
    mfs_collect_stats st = collect_later(&a, 5000);
    assert_int_equal(st.inodes, 100);
    assert_int_equal(st.tombstones, 102);
    assert_true(st.moves >= 150); /* 100 creates, 50 renames of keep */
    assert_int_equal(mfs_store_stats_get(a.s, &s1), 0);
    assert_int_equal(s1.entry_records, s0.entry_records);
    /* no undo reaches a settled move: the live ones' current moves go too
     * (keep's and lost+found's, 2 before the loop) */
    assert_int_equal(s0.move_records, 2);
    assert_int_equal(s1.move_records, 0);
    assert_int_equal(s1.inode_records, s0.inode_records);
    assert_int_equal(s1.files, 1);
    assert_content(a.s, keep, b, sizeof b);
    /* their inode numbers go too, but the one the kernel still holds,
     * until it forgets it */
    assert_int_equal(s1.ino_records, s0.ino_records + 1);
    uint64_t held = g_busy_ino;
    mfs_attr at;
    assert_int_equal(mfs_store_getattr(a.s, held, &at), -ENOENT);
    g_busy_ino = 0;
    mfs_store_forget(a.s, keep);           /* live: kept */
    mfs_store_forget(a.s, held + 1000000); /* unknown: nothing */
    assert_int_equal(mfs_store_stats_get(a.s, &s1), 0);
    assert_int_equal(s1.ino_records, s0.ino_records + 1);
    mfs_store_forget(a.s, held); /* the kernel's last forget */
    assert_int_equal(mfs_store_stats_get(a.s, &s1), 0);
    assert_int_equal(s1.ino_records, s0.ino_records);
    assert_int_equal(mfs_store_getattr(a.s, held, &at), -ENOENT);
    assert_content(a.s, keep, b, sizeof b);
    mfs_store_set_ino_busy_cb(a.s, NULL, NULL);
    /* a second pass finds nothing; all of it survives a reopen */
    st = collect_later(&a, 5000);
    assert_int_equal(st.tombstones, 0);
    rep_reopen(&a);
    assert_int_equal(mfs_store_stats_get(a.s, &s1), 0);
    assert_int_equal(s1.entry_records, s0.entry_records);
    assert_content(a.s, keep, b, sizeof b);
    /* the names are free again */
    uint64_t again = mkfile(a.s, MFS_ROOT_INO, "g0");
    put_content(a.s, again, b, sizeof b);
    assert_content(a.s, again, b, sizeof b);
    /* numbers left behind (the kernel held them, then the daemon stopped
     * before its FORGET; or an older build) go at the next open */
    assert_int_equal(mfs_store_stats_get(a.s, &s0), 0);
    set_retention(&a, 0); /* (the reopen set it back) */
    mfs_store_set_ino_busy_cb(a.s, busy_all, NULL);
    for (int i = 0; i < 10; i++) {
        char n[16];
        snprintf(n, sizeof n, "t%d", i);
        mkfile(a.s, MFS_ROOT_INO, n);
        assert_int_equal(mfs_store_unlink(a.s, MFS_ROOT_INO, n), 0);
    }
    settle_alone(&a);
    st = collect_later(&a, 5000);
    assert_int_equal(st.tombstones, 10);
    assert_int_equal(mfs_store_stats_get(a.s, &s1), 0);
    assert_int_equal(s1.ino_records, s0.ino_records + 10);
    rep_reopen(&a);
    set_retention(&a, 0);
    settle_alone(&a);
    collect_later(&a, 0);
    assert_int_equal(mfs_store_stats_get(a.s, &s1), 0);
    assert_int_equal(s1.ino_records, s0.ino_records);
    assert_content(a.s, again, b, sizeof b);
    assert_content(a.s, keep, b, sizeof b);
    rep_close(&a);
}

static void test_collect_shared_chunks(void **state)
{
    (void)state;
    rep a;
    rep_open(&a, 1, 0);
    set_retention(&a, 0);
    uint8_t *d = malloc(MIB);
    unique_bytes(d, MIB);
    uint64_t f = mkfile(a.s, MFS_ROOT_INO, "f");
    uint64_t g = mkfile(a.s, MFS_ROOT_INO, "g");
    put_content(a.s, f, d, MIB);
    put_content(a.s, g, d, MIB);
    assert_int_equal(mfs_store_unlink(a.s, MFS_ROOT_INO, "f"), 0);
    settle_alone(&a);
    mfs_collect_stats st = collect_later(&a, 5000);
    assert_int_equal(st.inodes, 1);
    assert_int_equal(st.chunks, 0);
    assert_int_equal(chunk_bytes(a.s), 1ull * MIB);
    assert_content(a.s, g, d, MIB);
    free(d);
    rep_close(&a);
}

/* A node that was away while a file was rewritten asks only for the
 * chunks of the version it will show, not for every rewrite it missed
 * (after collection nobody holds those). */
static void test_away_node_wants_last_version_only(void **state)
{
    (void)state;
    rep a, b;
    mesh2(&a, &b);
    set_retention(&a, 0);
    uint64_t ino = mkfile(a.s, MFS_ROOT_INO, "f");
    uint8_t *d = malloc(4 * 65536);
    for (int i = 0; i < 3; i++) {
        unique_bytes(d, 4 * 65536);
        put_content(a.s, ino, d, 4 * 65536);
    }
    sync_ops(a.s, b.s);
    assert_int_equal(mfs_store_chunks_wanted_count(b.s), data_chunks(a.s, ino));
    /* both hold every op: a collects the two rewrites */
    settle_alone(&a);
    mfs_collect_stats st = collect_later(&a, 5000);
    assert_int_equal(st.versions, 2);
    rep *h[1] = {&a};
    sync_chunks(b.s, h, 1);
    assert_int_equal(mfs_store_chunks_wanted_count(b.s), 0);
    mfs_attr at;
    assert_int_equal(mfs_store_lookup(b.s, MFS_ROOT_INO, "f", &at), 0);
    assert_content(b.s, at.ino, d, 4 * 65536);
    assert_same_dump(a.s, b.s);
    free(d);
    close2(&a, &b);
}

/* A mesh of a store that cuts new versions in fixed blocks (as older
 * builds did) and one that cuts them by content: each reads, keeps and
 * edits the other's versions, and both end identical, also when they
 * edit the file at once (a conflict). */
static void test_mixed_chunking(void **state)
{
    (void)state;
    rep a, b;
    setenv("MESHFS_FIXED_CHUNKS", "1", 1);
    rep_open(&a, 1, 0xa1a1a1a1ull);
    unsetenv("MESHFS_FIXED_CHUNKS");
    rep_open(&b, 0, 0xb2b2b2b2ull);
    merge(&a, &b);
    size_t len = 1u << 20;
    uint8_t *d = malloc(len + 2);
    unique_bytes(d, len);
    uint64_t fa = mkfile(a.s, MFS_ROOT_INO, "f");
    put_content(a.s, fa, d, len);
    merge(&a, &b);
    uint64_t fb = ino_of(b.s, MFS_ROOT_INO, "f");
    assert_content(b.s, fb, d, len);
    /* b inserts a byte in the middle: content-defined chunks over fixed */
    memmove(d + len / 2 + 1, d + len / 2, len / 2);
    d[len / 2] = 'b';
    assert_int_equal(mfs_store_write(b.s, fb, len / 2, d + len / 2,
                                     len / 2 + 1),
                     (ssize_t)(len / 2 + 1));
    assert_int_equal(mfs_store_publish(b.s, fb), 0);
    merge(&a, &b);
    assert_content(a.s, fa, d, len + 1);
    /* a overwrites a byte: fixed blocks over content-defined chunks */
    d[100] = 'a';
    assert_int_equal(mfs_store_write(a.s, fa, 100, "a", 1), 1);
    assert_int_equal(mfs_store_publish(a.s, fa), 0);
    merge(&a, &b);
    assert_content(b.s, fb, d, len + 1);
    /* both at once */
    assert_int_equal(mfs_store_write(a.s, fa, 0, "A", 1), 1);
    assert_int_equal(mfs_store_publish(a.s, fa), 0);
    assert_int_equal(mfs_store_write(b.s, fb, len, "BB", 2), 2);
    assert_int_equal(mfs_store_publish(b.s, fb), 0);
    merge(&a, &b);
    mfs_file_info fi;
    assert_int_equal(mfs_store_file_info(b.s, fb, &fi, NULL, 0), 0);
    assert_int_equal(fi.heads, 2);
    free(d);
    close2(&a, &b);
}

typedef struct trash_seen {
    int n;
    mfs_trash_item it[16];
} trash_seen;

static int trash_cb(void *arg, const mfs_trash_item *it)
{
    trash_seen *t = arg;
    if (t->n < 16)
        t->it[t->n++] = *it;
    return 0;
}

/* The trash lists overwritten versions and deleted files; restore brings
 * one back as a new change that replicates; the trash period is counted
 * from the change. */
static void test_trash_restore(void **state)
{
    (void)state;
    rep a, b;
    mesh2(&a, &b);
    set_retention(&a, 3600 * 1000);
    uint64_t f = mkfile(a.s, MFS_ROOT_INO, "f");
    uint64_t g = mkfile(a.s, MFS_ROOT_INO, "g");
    uint8_t v1[3000], v2[3000], gv[5000];
    unique_bytes(v1, sizeof v1);
    unique_bytes(v2, sizeof v2);
    unique_bytes(gv, sizeof gv);
    put_content(a.s, f, v1, sizeof v1);
    a.clk.ms += 1000;
    put_content(a.s, f, v2, sizeof v2);
    put_content(a.s, g, gv, sizeof gv);
    mfs_setattr sa = {.mask = MFS_SET_MODE, .mode = 0600};
    mfs_attr at;
    assert_int_equal(mfs_store_setattr(a.s, g, &sa, &at), 0);
    a.clk.ms += 1000;
    assert_int_equal(mfs_store_unlink(a.s, MFS_ROOT_INO, "g"), 0);
    trash_seen t = {0};
    assert_int_equal(mfs_store_trash_list(a.s, trash_cb, &t), 0);
    int fi = -1, gi = -1;
    for (int i = 0; i < t.n; i++) {
        if (!strcmp(t.it[i].path, "/f") && !t.it[i].deleted)
            fi = i;
        if (!strcmp(t.it[i].path, "/g") && t.it[i].deleted)
            gi = i;
    }
    if (fi < 0 || gi < 0)
        print_error("trash: %d items, f at %d, g at %d\n", t.n, fi, gi);
    assert_true(fi >= 0 && gi >= 0);
    assert_int_equal(t.it[fi].size, sizeof v1);
    assert_int_equal(t.it[gi].size, sizeof gv);
    assert_int_equal(t.it[gi].cause.node, a.node);
    assert_true(t.it[fi].have && t.it[gi].have);
    /* restore the overwritten version over the file, the deleted file
     * where it was; a name taken by another file is refused */
    assert_int_equal(mfs_store_restore(a.s, t.it[gi].inode, t.it[gi].version,
                                       MFS_ROOT_INO, "f", &at, NULL),
                     -EEXIST);
    assert_int_equal(mfs_store_restore(a.s, t.it[fi].inode, t.it[fi].version,
                                       MFS_ROOT_INO, "f", &at, NULL),
                     0);
    assert_int_equal(at.ino, f);
    assert_content(a.s, f, v1, sizeof v1);
    assert_int_equal(mfs_store_restore(a.s, t.it[gi].inode, t.it[gi].version,
                                       MFS_ROOT_INO, "g", &at, NULL),
                     0);
    assert_content(a.s, at.ino, gv, sizeof gv);
    assert_int_equal(at.mode & 07777, 0600);
    /* the restores replicate like any other change */
    merge(&a, &b);
    assert_int_equal(mfs_store_lookup(b.s, MFS_ROOT_INO, "g", &at), 0);
    assert_content(b.s, at.ino, gv, sizeof gv);
    /* once collected, it is gone from the trash */
    mfs_vv vv;
    assert_int_equal(mfs_store_vv(a.s, &vv), 0);
    mfs_store_collect_settled(a.s, &vv);
    mfs_vv_free(&vv);
    collect_later(&a, 3700 * 1000);
    t.n = 0;
    assert_int_equal(mfs_store_trash_list(a.s, trash_cb, &t), 0);
    for (int i = 0; i < t.n; i++)
        assert_true(strcmp(t.it[i].path, "/g") != 0 || !t.it[i].deleted);
    close2(&a, &b);
}

/* A removal replicates, is for good, and never shows in the tree. */
static void test_member_remove(void **state)
{
    (void)state;
    rep a, b;
    mesh2(&a, &b);
    uint64_t gone = 0x5555aaaa5555aaaaull, got[4];
    assert_int_equal(mfs_store_member_remove(a.s, a.node), -EINVAL);
    assert_int_equal(mfs_store_member_remove(a.s, 0), -EINVAL);
    assert_int_equal(mfs_store_members_removed(a.s, got, 4), 0);
    assert_int_equal(mfs_store_member_remove(a.s, gone), 0);
    assert_int_equal(mfs_store_member_remove(a.s, gone), -EALREADY);
    sync_pair(&a, &b);
    assert_int_equal(mfs_store_members_removed(b.s, got, 4), 1);
    assert_int_equal(got[0], gone);
    assert_int_equal(mfs_store_member_remove(b.s, gone), -EALREADY);
    assert_same_dump(a.s, b.s);
    close2(&a, &b);
}

static void assert_invited(const mfs_invited *got, const mfs_invited *want)
{
    assert_int_equal(got->id, want->id);
    assert_int_equal(got->by, want->by);
    assert_int_equal(got->created, want->created);
    assert_int_equal(got->expires, want->expires);
    assert_int_equal(got->uses, want->uses);
}

/* An open invitation is a register every member lists: set and changed
 * (a use taken) and cleared only by the node that made it, and each
 * change replicates. */
static void test_invited(void **state)
{
    (void)state;
    rep a, b;
    mesh2(&a, &b);
    mfs_invited iv = {.id = 0x1122334455667788ull,
                      .by = a.node,
                      .created = 1700000000,
                      .expires = 1700086400,
                      .uses = 2},
                low = {.id = 0xff, /* leading zeros in its name */
                       .by = a.node,
                       .created = 1700000100,
                       .expires = 1731536100,
                       .uses = 1},
                got[4], bad;
    assert_int_equal(mfs_store_invited_list(a.s, got, 4), 0);
    bad = iv, bad.by = b.node; /* only the node that made it */
    assert_int_equal(mfs_store_invited_put(a.s, &bad), -EINVAL);
    bad = iv, bad.id = 0;
    assert_int_equal(mfs_store_invited_put(a.s, &bad), -EINVAL);
    bad = iv, bad.uses = 0; /* used up: cleared, not set */
    assert_int_equal(mfs_store_invited_put(a.s, &bad), -EINVAL);
    assert_int_equal(mfs_store_invited_put(a.s, &iv), 0);
    assert_int_equal(mfs_store_invited_put(a.s, &iv), -EALREADY);
    assert_int_equal(mfs_store_invited_put(a.s, &low), 0);
    assert_int_equal(mfs_store_invited_list(a.s, got, 1), 2); /* cap 1 */
    assert_invited(&got[0], &low);
    sync_pair(&a, &b);
    assert_int_equal(mfs_store_invited_list(b.s, got, 4), 2);
    assert_invited(&got[0], &low); /* in id order */
    assert_invited(&got[1], &iv);
    assert_int_equal(mfs_store_invited_clear(b.s, iv.id), -EPERM);
    assert_int_equal(mfs_store_invited_clear(b.s, 0x77), -EALREADY);
    assert_int_equal(mfs_store_invited_clear(b.s, 0), -EINVAL);
    /* a join took a use */
    iv.uses = 1;
    assert_int_equal(mfs_store_invited_put(a.s, &iv), 0);
    sync_pair(&a, &b);
    assert_int_equal(mfs_store_invited_list(b.s, got, 4), 2);
    assert_invited(&got[1], &iv);
    /* used up, or revoked: gone everywhere */
    assert_int_equal(mfs_store_invited_clear(a.s, iv.id), 0);
    assert_int_equal(mfs_store_invited_clear(a.s, iv.id), -EALREADY);
    assert_int_equal(mfs_store_invited_list(a.s, got, 4), 1);
    sync_pair(&a, &b);
    assert_int_equal(mfs_store_invited_list(b.s, got, 4), 1);
    assert_invited(&got[0], &low);
    /* b's own beside a's */
    mfs_invited mine = {.id = 0xb0b0b0b0b0b0b0b0ull,
                        .by = b.node,
                        .created = 1700000200,
                        .expires = 1700000300,
                        .uses = 3};
    assert_int_equal(mfs_store_invited_put(b.s, &mine), 0);
    sync_pair(&a, &b);
    assert_int_equal(mfs_store_invited_list(a.s, got, 4), 2);
    assert_invited(&got[0], &low);
    assert_invited(&got[1], &mine);
    assert_int_equal(mfs_store_invited_clear(a.s, mine.id), -EPERM);
    /* an invitation is no origin: nothing waits for it (the vectors name
     * only the two nodes) */
    mfs_vv va;
    assert_int_equal(mfs_store_vv(a.s, &va), 0);
    assert_int_equal(va.n, 2);
    assert_int_equal(mfs_vv_get(&va, iv.id), 0);
    assert_int_equal(mfs_vv_get(&va, low.id), 0);
    mfs_vv_free(&va);
    assert_same_dump(a.s, b.s);
    close2(&a, &b);
}

/* A node that reached the mesh becomes an origin once, so that every
 * member counts it for good (the vectors name it). */
static void test_member_join(void **state)
{
    (void)state;
    rep a, b;
    rep_open(&a, 1, 0xa1);
    rep_open(&b, 0, 0xb2);
    assert_int_equal(mfs_store_member_join(a.s), 0); /* made the mesh */
    assert_int_equal(mfs_store_member_join(b.s), -EAGAIN);
    sync_ops(a.s, b.s);
    assert_int_equal(mfs_store_member_join(b.s), 1);
    assert_int_equal(mfs_store_member_join(b.s), 0);
    sync_ops(b.s, a.s);
    mfs_vv va;
    assert_int_equal(mfs_store_vv(a.s, &va), 0);
    assert_int_equal(mfs_vv_get(&va, b.node), 1);
    mfs_vv_free(&va);
    assert_same_dump(a.s, b.s);
    close2(&a, &b);
}

/* ---- folding the op log, and snapshots ---------------------------------- */

static uint64_t ops_in_log(mfs_store *s, uint64_t *folded)
{
    mfs_store_stats st;
    assert_int_equal(mfs_store_stats_get(s, &st), 0);
    if (folded)
        *folded = st.ops_folded;
    return st.ops;
}

/* How many snapshot.*.tmp files dir holds (none should outlive a build or
 * a fetch: snapshot.c makes them without a name). */
static int snap_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        size_t l = strlen(e->d_name);
        if (!strncmp(e->d_name, "snapshot.", 9) && l > 4 &&
            !strcmp(e->d_name + l - 4, ".tmp"))
            n++;
    }
    closedir(d);
    return n;
}

/* s's snapshot, built into its file and read back whole (caller frees). */
static uint8_t *snap_of(mfs_store *s, size_t *len)
{
    int fd;
    uint64_t n;
    mfs_snapshot_info inf;
    assert_int_equal(mfs_store_snapshot_file(s, &fd, &n, &inf), 0);
    assert_int_equal(inf.bytes, n);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, n);
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    assert_int_equal(pread(fd, buf, n, 0), (ssize_t)n);
    close(fd);
    assert_int_equal(snap_files(mfs_store_dir(s)), 0);
    *len = n;
    return buf;
}

/* Settled ops leave the op log; a node below the floor is refused ops
 * (-ESTALE) and installs a snapshot instead, then replicates both ways as
 * before. A damaged snapshot changes nothing; one that lacks ops the
 * store folded is refused; ops a store made before it caught up are kept
 * on top of the snapshot. */
static void test_fold_and_snapshot(void **state)
{
    (void)state;
    rep a, b, c;
    rep_open(&a, 1, 0xa1);
    build_tree(a.s);
    uint64_t f = mkfile(a.s, MFS_ROOT_INO, "f");
    put_pub(a.s, f, "one");
    /* an op of a's from before the fold, to replay later */
    mfs_vv empty = {0};
    uint8_t *old = malloc(BATCH_CAP);
    ssize_t oldn = mfs_store_ops_since(a.s, &empty, old, BATCH_CAP);
    assert_true(oldn > 0);
    uint64_t before = ops_in_log(a.s, NULL), folded;
    set_retention(&a, 0);
    settle_alone(&a);
    assert_int_equal(mfs_store_collect_now(a.s, NULL), 0);
    assert_int_equal(ops_in_log(a.s, &folded), 0);
    assert_int_equal(folded, before);
    mfs_vv fl;
    assert_int_equal(mfs_store_log_floor(a.s, &fl), 0);
    assert_int_equal(fl.n, 1);
    assert_int_equal(fl.e[0].seq, before);
    mfs_vv_free(&fl);
    /* a new member cannot be sent ops */
    rep_open(&b, 0, 0xb2);
    uint8_t *buf = batchbuf();
    assert_int_equal(mfs_store_ops_since(a.s, &empty, buf, BATCH_CAP),
                     -ESTALE);
    /* a damaged snapshot changes nothing */
    size_t len;
    uint8_t *snap = snap_of(a.s, &len);
    char *d0 = dump(b.s);
    snap[len / 2] ^= 1;
    assert_int_equal(mfs_store_snapshot_install(b.s, snap, len, NULL),
                     -EBADMSG);
    snap[len / 2] ^= 1;
    assert_int_equal(mfs_store_snapshot_install(b.s, snap, len / 2, NULL),
                     -EBADMSG);
    char *d1 = dump(b.s);
    assert_string_equal(d0, d1);
    free(d0);
    free(d1);
    /* the snapshot, then its chunks: b holds what a holds */
    mfs_snapshot_info inf;
    assert_int_equal(mfs_store_snapshot_install(b.s, snap, len, &inf), 0);
    assert_true(inf.inodes >= 10 && inf.entries >= 10);
    rep *h[1] = {&a};
    sync_chunks(b.s, h, 1);
    assert_same_dump(a.s, b.s);
    vv_equal(a.s, b.s);
    assert_string_equal(content(b.s, ino_of(b.s, MFS_ROOT_INO, "f")), "one");
    /* ops from before the fold are held: duplicates, not applied again */
    mfs_apply_result res = {0};
    assert_int_equal(mfs_store_apply(b.s, old, (size_t)oldn, &res), 0);
    assert_int_equal(res.applied, 0);
    assert_true(res.duplicates > 0);
    assert_int_equal(mfs_store_apply(a.s, old, (size_t)oldn, &res), 0);
    assert_int_equal(res.applied, 0);
    free(old);
    /* and from there on ops flow both ways */
    put_pub(a.s, f, "two");
    uint64_t g = mkfile(b.s, MFS_ROOT_INO, "g");
    put_pub(b.s, g, "from b");
    assert_int_equal(mfs_store_rename(b.s, MFS_ROOT_INO, "moved",
                                      MFS_ROOT_INO, "moved-again", 0),
                     0);
    merge(&a, &b);
    assert_string_equal(content(a.s, ino_of(a.s, MFS_ROOT_INO, "g")),
                        "from b");
    free(snap);

    /* c changed files before it caught up: its changes stay */
    rep_open(&c, 0, 0xc3);
    uint64_t mine = mkfile(c.s, MFS_ROOT_INO, "c-made");
    put_pub(c.s, mine, "kept");
    snap = snap_of(a.s, &len);
    assert_int_equal(mfs_store_snapshot_install(c.s, snap, len, &inf), 0);
    assert_true(inf.extra >= 3); /* its create: inode, move, versions */
    rep *h2[2] = {&a, &b};
    sync_chunks(c.s, h2, 2);
    assert_string_equal(content(c.s, ino_of(c.s, MFS_ROOT_INO, "c-made")),
                        "kept");
    sync_pair(&a, &c);
    sync_pair(&b, &c);
    assert_same_dump(a.s, c.s);
    assert_same_dump(b.s, c.s);
    /* the old snapshot lacks what c has since folded: refused */
    set_retention(&c, 0);
    settle_alone(&c);
    assert_int_equal(mfs_store_collect_now(c.s, NULL), 0);
    assert_int_equal(ops_in_log(c.s, NULL), 0);
    char *dc = dump(c.s);
    assert_int_equal(mfs_store_snapshot_install(c.s, snap, len, NULL),
                     -ENOTEMPTY);
    char *dc2 = dump(c.s);
    assert_string_equal(dc, dc2);
    free(dc);
    free(dc2);
    free(snap);
    /* a store that folded reopens with its floor */
    rep_reopen(&c);
    assert_int_equal(mfs_store_ops_since(c.s, &empty, buf, BATCH_CAP),
                     -ESTALE);
    close2(&a, &b);
    rep_close(&c);
}

/* A node that rejoins keeps what only it had: b's changes made after the
 * mesh last heard from it are copied out of b's store into a new member's
 * store (as a rejoining node's daemon does), with their paths; what the
 * mesh holds is not copied again. */
static void test_rejoin_recover(void **state)
{
    (void)state;
    rep a, b, c;
    mesh2(&a, &b);
    /* before the cut: b made "early", a made "shared" and "gone" */
    uint64_t early = mkfile(b.s, MFS_ROOT_INO, "early");
    put_pub(b.s, early, "early from b");
    uint64_t sh = mkfile(a.s, MFS_ROOT_INO, "shared");
    put_pub(a.s, sh, "shared v1");
    mkfile(a.s, MFS_ROOT_INO, "gone");
    mkfile(a.s, MFS_ROOT_INO, "moved");
    sync_pair(&a, &b);

    /* b alone: a new tree, an edit, a rename, a delete, a symlink and a
     * write never published */
    uint64_t d = mkdir_(b.s, MFS_ROOT_INO, "d");
    uint64_t e = mkdir_(b.s, d, "e");
    uint64_t f = mkfile(b.s, e, "f");
    static char big[3 * 65536 + 17];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    assert_int_equal(mfs_store_write(b.s, f, 0, big, sizeof big),
                     (ssize_t)sizeof big);
    assert_int_equal(mfs_store_publish(b.s, f), 0);
    assert_int_equal(mfs_store_setxattr(b.s, f, "user.k", "v", 1, 0), 0);
    put_pub(b.s, ino_of(b.s, MFS_ROOT_INO, "shared"), "shared v2 from b");
    assert_int_equal(mfs_store_rename(b.s, MFS_ROOT_INO, "moved", d, "m2", 0),
                     0);
    assert_int_equal(mfs_store_unlink(b.s, MFS_ROOT_INO, "gone"), 0);
    mfs_attr la;
    assert_int_equal(mfs_store_symlink(b.s, d, "ln", "e/f", 0, 0, &la), 0);
    uint64_t u = mkfile(b.s, MFS_ROOT_INO, "unpub");
    assert_int_equal(mfs_store_write(b.s, u, 0, "draft", 5), 5);

    /* c joins through a only */
    rep_open(&c, 0, 0xc3c3c3c3ull);
    rep *h[2] = {&a, &c};
    sync_ops(a.s, c.s);
    sync_chunks(c.s, h, 2);
    mfs_vv vv;
    assert_int_equal(mfs_store_vv(c.s, &vv), 0);
    uint64_t held = mfs_vv_get(&vv, b.node);
    mfs_vv_free(&vv);
    assert_true(held > 0);

    uint64_t lf = ino_of(c.s, MFS_ROOT_INO, "lost+found");
    uint64_t into = mkdir_(c.s, lf, "b-rejoin");
    mfs_recover_stats st;
    assert_int_equal(mfs_store_recover(c.s, into, b.s, held, NULL, &st), 0);
    assert_true(st.ops >= 10);
    /* f, shared, m2, unpub; the symlink; d and e */
    assert_int_equal(st.files, 4);
    assert_int_equal(st.symlinks, 1);
    assert_int_equal(st.dirs, 2);
    assert_int_equal(st.unreadable, 0);
    assert_int_equal(st.bytes,
                     sizeof big + strlen("shared v2 from b") + 5);

    uint64_t cd = ino_of(c.s, into, "d");
    uint64_t cf = ino_of(c.s, ino_of(c.s, cd, "e"), "f");
    static char back[sizeof big];
    assert_int_equal(mfs_store_read(c.s, cf, 0, back, sizeof back),
                     (ssize_t)sizeof big);
    assert_memory_equal(back, big, sizeof big);
    char x[8];
    assert_int_equal(mfs_store_getxattr(c.s, cf, "user.k", x, sizeof x), 1);
    assert_string_equal(content(c.s, ino_of(c.s, into, "shared")),
                        "shared v2 from b");
    assert_string_equal(content(c.s, ino_of(c.s, into, "unpub")), "draft");
    ino_of(c.s, cd, "m2");
    /* again into the same dir (an unmount cut the first run short):
     * whole copies stay, a partial one is made again; a stop request
     * gives up at once */
    mfs_setattr cut = {.mask = MFS_SET_SIZE, .size = 100};
    mfs_attr ca;
    assert_int_equal(mfs_store_setattr(c.s, cf, &cut, &ca), 0);
    assert_int_equal(mfs_store_publish(c.s, cf), 0);
    assert_int_equal(mfs_store_recover(c.s, into, b.s, held, NULL, &st), 0);
    assert_int_equal(st.files, 1);
    assert_int_equal(st.bytes, sizeof big);
    cf = ino_of(c.s, ino_of(c.s, cd, "e"), "f");
    memset(back, 0, sizeof back);
    assert_int_equal(mfs_store_read(c.s, cf, 0, back, sizeof back),
                     (ssize_t)sizeof big);
    assert_memory_equal(back, big, sizeof big);
    int stop = 1;
    assert_int_equal(mfs_store_recover(c.s, into, b.s, held, &stop, &st),
                     -ECANCELED);
    char t[16];
    assert_int_equal(mfs_store_readlink(c.s, ino_of(c.s, cd, "ln"), t,
                                        sizeof t),
                     3);
    /* what the mesh held is not copied, and the mesh's tree is as it was */
    mfs_attr no;
    assert_int_equal(mfs_store_lookup(c.s, into, "early", &no), -ENOENT);
    assert_int_equal(mfs_store_lookup(c.s, into, "gone", &no), -ENOENT);
    assert_string_equal(content(c.s, ino_of(c.s, MFS_ROOT_INO, "shared")),
                        "shared v1");
    ino_of(c.s, MFS_ROOT_INO, "gone");
    ino_of(c.s, MFS_ROOT_INO, "moved");
    /* the copies are c's changes and reach a like any other */
    sync_pair(&a, &c);
    assert_same_dump(a.s, c.s);

    /* nothing to keep once the mesh holds all of b's changes */
    uint64_t into2 = mkdir_(c.s, lf, "b-again");
    assert_int_equal(mfs_store_publish(b.s, u), 0);
    sync_pair(&a, &b);
    assert_int_equal(mfs_store_vv(a.s, &vv), 0);
    held = mfs_vv_get(&vv, b.node);
    mfs_vv_free(&vv);
    assert_int_equal(mfs_store_recover(c.s, into2, b.s, held, NULL, &st), 0);
    assert_int_equal(st.ops, 0);
    assert_int_equal(st.files + st.dirs + st.symlinks, 0);
    dirlist *l = list_dir(c.s, into2);
    assert_int_equal(l->n, 0);
    free(l);
    close2(&a, &b);
    rep_close(&c);
}

/* b has unpublished writes on f (based on f's first version) and an open
 * file pinned to g's first version when it installs a snapshot of a, which
 * overwrote both and collected the first versions: b still reads the
 * blocks of f it did not rewrite and g's pinned version, and nothing it
 * shows is missing (before: the base's record went with the install, the
 * reads failed with -EIO; replication simulator, seed 39). */
static void test_snapshot_keeps_held_versions(void **state)
{
    (void)state;
    rep a, b;
    mesh2(&a, &b);
    static uint8_t v1[3 * 65536], g1[65536];
    unique_bytes(v1, sizeof v1);
    unique_bytes(g1, sizeof g1);
    uint64_t f = mkfile(a.s, MFS_ROOT_INO, "f");
    assert_int_equal(mfs_store_write(a.s, f, 0, v1, sizeof v1),
                     (ssize_t)sizeof v1);
    assert_int_equal(mfs_store_publish(a.s, f), 0);
    uint64_t g = mkfile(a.s, MFS_ROOT_INO, "g");
    assert_int_equal(mfs_store_write(a.s, g, 0, g1, sizeof g1),
                     (ssize_t)sizeof g1);
    assert_int_equal(mfs_store_publish(a.s, g), 0);
    sync_pair(&a, &b);
    uint64_t bf = ino_of(b.s, MFS_ROOT_INO, "f");
    uint64_t bg = ino_of(b.s, MFS_ROOT_INO, "g");
    assert_int_equal(mfs_store_write(b.s, bf, 0, "draft", 5), 5);
    mfs_stamp pin;
    assert_int_equal(mfs_store_version_current(b.s, bg, &pin), 0);
    static int handle;
    assert_int_equal(mfs_store_pin_set(b.s, &handle, bg, pin), 0);

    /* a overwrites both and, settled alone, folds and collects */
    put_pub(a.s, f, "f two");
    put_pub(a.s, g, "g two");
    set_retention(&a, 0);
    a.clk.ms += 1000;
    settle_alone(&a);
    mfs_collect_stats cs;
    assert_int_equal(mfs_store_collect_now(a.s, &cs), 0);
    assert_int_equal(cs.versions, 2);
    size_t len;
    uint8_t *snap = snap_of(a.s, &len);
    assert_int_equal(mfs_store_snapshot_install(b.s, snap, len, NULL), 0);
    free(snap);

    uint64_t absent = 0;
    assert_int_equal(mfs_store_verify(b.s, &absent), 0);
    static uint8_t back[sizeof v1];
    assert_int_equal(mfs_store_read(b.s, bf, 0, back, sizeof back),
                     (ssize_t)sizeof back);
    assert_memory_equal(back, "draft", 5);
    assert_memory_equal(back + 5, v1 + 5, sizeof v1 - 5);
    mfs_stamp p = pin;
    assert_int_equal(mfs_store_read_pinned(b.s, bg, &p, 0, back, sizeof g1),
                     (ssize_t)sizeof g1);
    assert_memory_equal(back, g1, sizeof g1);
    /* and once nothing holds them, collection takes them */
    mfs_store_pin_drop(b.s, &handle);
    assert_int_equal(mfs_store_publish(b.s, bf), 0);
    merge(&a, &b);
    set_retention(&b, 0);
    b.clk.ms += 2000;
    settle_alone(&b);
    assert_int_equal(mfs_store_collect_now(b.s, &cs), 0);
    assert_true(cs.versions >= 1);
    assert_int_equal(mfs_store_verify(b.s, &absent), 0);
    close2(&a, &b);
}

/* vv with origin's entry set to seq (added in node order if absent). */
static void vv_set(mfs_vv *vv, uint64_t origin, uint64_t seq)
{
    size_t i = 0;
    while (i < vv->n && vv->e[i].node < origin)
        i++;
    if (i < vv->n && vv->e[i].node == origin) {
        vv->e[i].seq = seq;
        return;
    }
    mfs_vv_entry *e = realloc(vv->e, (vv->n + 1) * sizeof(*e));
    assert_non_null(e);
    memmove(e + i + 1, e + i, (vv->n - i) * sizeof(*e));
    e[i] = (mfs_vv_entry){origin, seq};
    vv->e = e;
    vv->n++;
}

/* snap (len bytes) as snapshot format fmt (snapshot.c: the format, a u32
 * at 8, is followed by the BLAKE2b of everything from 44 on; records
 * start at 52), without its superseded marks when strip is set: a new
 * buffer (caller frees), its length in *out_len. */
static uint8_t *snap_as(const uint8_t *snap, size_t len, uint32_t fmt,
                        bool strip, size_t *out_len)
{
    uint8_t *o = malloc(len);
    assert_non_null(o);
    size_t n = 52, off = 52;
    memcpy(o, snap, n);
    while (off < len && snap[off] != 0xFF) {
        size_t kl = ((size_t)snap[off + 1] << 8) | snap[off + 2];
        size_t vl = ((size_t)snap[off + 3] << 24) |
                    ((size_t)snap[off + 4] << 16) |
                    ((size_t)snap[off + 5] << 8) | snap[off + 6];
        size_t rl = 7 + kl + vl;
        assert_true(off + rl < len);
        if (!strip || snap[off] != DB_SUPERSEDED) {
            memcpy(o + n, snap + off, rl);
            n += rl;
        }
        off += rl;
    }
    assert_int_equal(off + 1, len);
    o[n++] = 0xFF;
    o[8] = (uint8_t)(fmt >> 24);
    o[9] = (uint8_t)(fmt >> 16);
    o[10] = (uint8_t)(fmt >> 8);
    o[11] = (uint8_t)fmt;
    mfs_blake2b256(o + 12, o + 44, n - 44);
    *out_len = n;
    return o;
}

static uint64_t conflicts(mfs_store *s)
{
    mfs_store_stats st;
    assert_int_equal(mfs_store_stats_get(s, &st), 0);
    return st.conflicts;
}

/* a and b in a mesh; f's v1 (a's), v2 (b's, on v1) and v3 (a's, on
 * v2), all replicated; then a, with only the ops up to v1 settled, has
 * collected v2 (its cause, v3, is a's op) while v1 waits for v2's op
 * to settle: v1 is held and superseded, and nothing a holds links it to
 * v3 any more. */
static void superseded_by_collected(rep *a, rep *b)
{
    mesh2(a, b);
    uint64_t f = mkfile(a->s, MFS_ROOT_INO, "f");
    put_pub(a->s, f, "v1 from a");
    sync_pair(a, b);
    mfs_vv vv;
    assert_int_equal(mfs_store_vv(a->s, &vv), 0);
    uint64_t b_before = mfs_vv_get(&vv, b->node);
    mfs_vv_free(&vv);
    b->clk.ms += 1000;
    put_pub(b->s, ino_of(b->s, MFS_ROOT_INO, "f"), "v2 from b");
    sync_pair(a, b);
    a->clk.ms += 2000;
    put_pub(a->s, f, "v3 from a");
    sync_pair(a, b);
    assert_int_equal(conflicts(a->s), 0);
    /* settled: all of a's ops, none of b's since v2 */
    set_retention(a, 0);
    a->clk.ms += 2000;
    assert_int_equal(mfs_store_vv(a->s, &vv), 0);
    vv_set(&vv, b->node, b_before);
    mfs_store_collect_settled(a->s, &vv);
    mfs_vv_free(&vv);
    mfs_collect_stats cs;
    assert_int_equal(mfs_store_collect_now(a->s, &cs), 0);
    assert_int_equal(cs.versions, 1); /* v2; v1 waits for it to settle */
}

/* A snapshot says which versions are superseded. a holds v1 superseded
 * through v2, which it collected (superseded_by_collected). c installs
 * a's snapshot and fetches the chunks: v1 stays superseded, as on a
 * (before, it became a head beside v3 on c alone: a conflict copy no
 * other node showed, replication simulator seed 17 with per-node
 * keys). */
static void test_snapshot_keeps_superseded(void **state)
{
    (void)state;
    rep a, b, c;
    superseded_by_collected(&a, &b);
    size_t len;
    uint8_t *snap = snap_of(a.s, &len);
    rep_open(&c, 0, 0xc3);
    mfs_snapshot_info inf;
    assert_int_equal(mfs_store_snapshot_install(c.s, snap, len, &inf), 0);
    assert_int_equal(inf.versions, 2); /* v1 and v3 */
    free(snap);
    rep *h[2] = {&a, &b};
    sync_chunks(c.s, h, 2);
    assert_int_equal(conflicts(c.s), 0);
    assert_string_equal(content(c.s, ino_of(c.s, MFS_ROOT_INO, "f")),
                        "v3 from a");
    assert_same_dump(a.s, c.s);
    /* and v1 goes on c once v2's op is settled, as on a */
    sync_pair(&a, &c);
    sync_pair(&b, &c);
    assert_same_dump(a.s, c.s);
    set_retention(&c, 0);
    c.clk.ms += 5000;
    settle_alone(&c);
    mfs_collect_stats cs;
    assert_int_equal(mfs_store_collect_now(c.s, &cs), 0);
    assert_true(cs.versions >= 1);
    assert_same_dump(a.s, c.s);
    close2(&a, &b);
    rep_close(&c);
}

/* Snapshot format 3 carries the superseded marks; format 2 cannot: one
 * labelled 2 that has them is refused, one without them installs (as
 * before), and a newer format is refused. */
static void test_snapshot_formats(void **state)
{
    (void)state;
    rep a, b, c;
    superseded_by_collected(&a, &b);
    size_t len, olen;
    uint8_t *snap = snap_of(a.s, &len);
    rep_open(&c, 0, 0xc3);
    uint8_t *old = snap_as(snap, len, 2, false, &olen);
    assert_int_equal(olen, len);
    assert_int_equal(mfs_store_snapshot_install(c.s, old, olen, NULL),
                     -EBADMSG);
    free(old);
    old = snap_as(snap, len, 4, false, &olen);
    assert_int_equal(mfs_store_snapshot_install(c.s, old, olen, NULL),
                     -EBADMSG);
    free(old);
    old = snap_as(snap, len, 2, true, &olen);
    assert_true(olen < len);
    mfs_snapshot_info inf;
    assert_int_equal(mfs_store_snapshot_install(c.s, old, olen, &inf), 0);
    assert_int_equal(inf.versions, 2);
    free(old);
    /* the format 3 one replaces what it installed */
    assert_int_equal(mfs_store_snapshot_install(c.s, snap, len, &inf), 0);
    free(snap);
    rep *h[2] = {&a, &b};
    sync_chunks(c.s, h, 2);
    assert_same_dump(a.s, c.s);
    close2(&a, &b);
    rep_close(&c);
}

/* A snapshot is written to a file in pieces (snapshot.c SNAP_WBUF, 1 MiB)
 * with its sum computed as it goes: one of several MiB, whose records
 * straddle the pieces, carries the sum that the one-shot BLAKE2b gives of
 * its bytes, is the same bytes when built twice from the same state, and,
 * received into a spool file and installed from a mapping of it as
 * sync/repl.c does, gives a store with the sender's dump. A stale file
 * of an earlier run is removed, and no file is left in either store. */
static void test_snapshot_file(void **state)
{
    (void)state;
    rep a, b;
    rep_open(&a, 1, 0xa1);
    build_tree(a.s);
    char name[32];
    for (int i = 0; i < 12000; i++) {
        snprintf(name, sizeof(name), "file-%05d", i);
        uint64_t f = mkfile(a.s, MFS_ROOT_INO, name);
        if (i % 100 == 0)
            put_pub(a.s, f, name);
    }
    set_retention(&a, 0);
    settle_alone(&a);
    assert_int_equal(mfs_store_collect_now(a.s, NULL), 0);
    /* one a crash left between making and unlinking it */
    char stale[4096];
    snprintf(stale, sizeof(stale), "%s/snapshot.out.tmp", a.dir);
    int sfd = open(stale, O_CREAT | O_WRONLY, 0600);
    assert_true(sfd >= 0);
    close(sfd);
    assert_int_equal(snap_files(a.dir), 1);
    size_t len, len2;
    uint8_t *snap = snap_of(a.s, &len);
    print_message("snapshot of %zu bytes\n", len);
    assert_true(len > 2u << 20); /* records straddle three pieces */
    assert_memory_equal(snap, "MFSSNAP1", 8);
    uint8_t sum[MFS_BLAKE2B256_LEN];
    mfs_blake2b256(sum, snap + 44, len - 44);
    assert_memory_equal(sum, snap + 12, sizeof(sum));
    uint8_t *again = snap_of(a.s, &len2);
    assert_int_equal(len2, len);
    assert_memory_equal(again, snap, len);
    free(again);
    /* received as sync/repl.c receives it: pieces written at their
     * offsets, out of order, into a spool file; installed from a map */
    rep_open(&b, 0, 0xb2);
    int fd;
    assert_int_equal(mfs_store_snapshot_spool(b.s, &fd), 0);
    assert_int_equal(ftruncate(fd, (off_t)len), 0);
    size_t piece = 1u << 20;
    for (size_t o = piece; o < len; o += piece) {
        size_t n = len - o < piece ? len - o : piece;
        assert_int_equal(pwrite(fd, snap + o, n, (off_t)o), (ssize_t)n);
    }
    assert_int_equal(pwrite(fd, snap, piece, 0), (ssize_t)piece);
    assert_int_equal(snap_files(b.dir), 0);
    void *map = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
    assert_true(map != MAP_FAILED);
    mfs_snapshot_info inf;
    assert_int_equal(mfs_store_snapshot_install(b.s, map, len, &inf), 0);
    assert_int_equal(inf.bytes, len);
    assert_true(inf.entries > 12000);
    munmap(map, len);
    close(fd);
    rep *h[1] = {&a};
    sync_chunks(b.s, h, 1); /* a snapshot carries no chunks */
    assert_same_dump(a.s, b.s);
    assert_int_equal(snap_files(a.dir), 0);
    assert_int_equal(snap_files(b.dir), 0);
    free(snap);
    close2(&a, &b);
}

/* A version superseded before it arrived stays so across a snapshot. c
 * wrote v2 on b's v1; a got v2 without v1 (v1 is marked superseded,
 * waiting for it), wrote v3 and collected v2. d installs a's snapshot;
 * when v1 arrives, it lands superseded on d as on a (before, d had no
 * mark for it: v1 became a head beside v3 on d alone). */
static void test_snapshot_keeps_superseded_absent(void **state)
{
    (void)state;
    rep a, b, c, d;
    mesh3(&a, &b, &c);
    sync_pair(&b, &c);
    uint64_t f = mkfile(a.s, MFS_ROOT_INO, "f");
    put_pub(a.s, f, "v0 from a");
    sync_pair(&a, &b);
    sync_pair(&a, &c);
    sync_pair(&b, &c);
    /* b writes v1, which reaches c only; c writes v2 on it */
    b.clk.ms += 1000;
    put_pub(b.s, ino_of(b.s, MFS_ROOT_INO, "f"), "v1 from b");
    rep *hb[1] = {&b};
    sync_ops(b.s, c.s);
    sync_chunks(c.s, hb, 1);
    c.clk.ms += 2000;
    put_pub(c.s, ino_of(c.s, MFS_ROOT_INO, "f"), "v2 from c");
    /* a gets c's v2 (c's ops only) and its chunks, then writes v3 */
    mfs_vv vv, cv;
    assert_int_equal(mfs_store_vv(a.s, &vv), 0);
    assert_int_equal(mfs_store_vv(c.s, &cv), 0);
    uint64_t b_held = mfs_vv_get(&vv, b.node);
    vv_set(&vv, b.node, mfs_vv_get(&cv, b.node));
    mfs_vv_free(&cv);
    uint8_t *buf = batchbuf();
    ssize_t n = mfs_store_ops_since(c.s, &vv, buf, BATCH_CAP);
    mfs_vv_free(&vv);
    assert_true(n > 0);
    mfs_apply_result res = {0};
    assert_int_equal(mfs_store_apply(a.s, buf, (size_t)n, &res), 0);
    assert_true(res.applied > 0);
    rep *hc[1] = {&c};
    sync_chunks(a.s, hc, 1);
    assert_int_equal(mfs_store_vv(a.s, &vv), 0);
    assert_int_equal(mfs_vv_get(&vv, b.node), b_held); /* no v1 */
    mfs_vv_free(&vv);
    a.clk.ms += 3000;
    put_pub(a.s, f, "v3 from a");
    sync_ops(a.s, b.s);
    sync_ops(a.s, c.s);
    /* what a holds is settled (b and c hold it too): a collects v2
     * (superseded by v3) and folds */
    set_retention(&a, 0);
    a.clk.ms += 2000;
    settle_alone(&a);
    mfs_collect_stats cs;
    assert_int_equal(mfs_store_collect_now(a.s, &cs), 0);
    assert_true(cs.versions >= 1);
    size_t len;
    uint8_t *snap = snap_of(a.s, &len);
    rep_open(&d, 0, 0xd4);
    assert_int_equal(mfs_store_snapshot_install(d.s, snap, len, NULL), 0);
    free(snap);
    /* v1 arrives on a and on d */
    rep *all[4] = {&a, &b, &c, &d};
    sync_ops(b.s, a.s);
    sync_ops(b.s, d.s);
    sync_chunks(a.s, all, 4);
    sync_chunks(d.s, all, 4);
    assert_int_equal(conflicts(a.s), 0);
    assert_int_equal(conflicts(d.s), 0);
    assert_string_equal(content(d.s, ino_of(d.s, MFS_ROOT_INO, "f")),
                        "v3 from a");
    assert_same_dump(a.s, d.s);
    /* everyone agrees */
    sync_pair(&a, &b);
    sync_pair(&a, &c);
    sync_pair(&a, &d);
    sync_pair(&b, &d);
    sync_pair(&c, &d);
    assert_same_dump(a.s, b.s);
    assert_same_dump(a.s, c.s);
    assert_same_dump(a.s, d.s);
    close2(&a, &b);
    close2(&c, &d);
}

/* Two deletes of one file, each by a node that had seen a different
 * edit: b deletes having seen a's edit, c (later) having seen only its
 * own. Every edit was seen by one of the deletes, so the file stays
 * deleted on all three, in whatever order they learn of it (before, only
 * the last delete counted: a's edit brought the file back, and a node
 * that collected under b's delete never fetched it again, replication
 * simulator long seed 1196). An edit that no delete had seen still
 * comes back. */
static void test_two_deletes_union(void **state)
{
    (void)state;
    rep a, b, c;
    mesh3(&a, &b, &c);
    rep *all[3] = {&a, &b, &c};
    uint64_t f = mkfile(a.s, MFS_ROOT_INO, "f");
    put_pub(a.s, f, "v0");
    uint64_t g = mkfile(a.s, MFS_ROOT_INO, "g");
    put_pub(a.s, g, "g0");
    sync_pair(&a, &b);
    sync_pair(&a, &c);
    sync_pair(&b, &c);
    /* a edits f, b gets that and deletes f; c edits and deletes f later
     * without having seen either */
    a.clk.ms += 1000;
    put_pub(a.s, f, "v1 from a");
    sync_ops(a.s, b.s);
    rep *h[1] = {&a};
    sync_chunks(b.s, h, 1);
    b.clk.ms += 2000;
    assert_int_equal(mfs_store_unlink(b.s, MFS_ROOT_INO, "f"), 0);
    c.clk.ms += 3000;
    put_pub(c.s, ino_of(c.s, MFS_ROOT_INO, "f"), "v2 from c");
    c.clk.ms += 1000;
    assert_int_equal(mfs_store_unlink(c.s, MFS_ROOT_INO, "f"), 0);
    /* g: edited on a, deleted on c, which had not seen the edit */
    put_pub(a.s, g, "g1 from a");
    assert_int_equal(mfs_store_unlink(c.s, MFS_ROOT_INO, "g"), 0);
    /* c hears from b first, then from a */
    sync_pair(&b, &c);
    sync_pair(&a, &c);
    sync_pair(&a, &b);
    for (int i = 0; i < 3; i++) {
        mfs_attr at;
        assert_int_equal(mfs_store_lookup(all[i]->s, MFS_ROOT_INO, "f", &at),
                         -ENOENT);
        assert_int_equal(mfs_store_lookup(all[i]->s, MFS_ROOT_INO, "g", &at),
                         0);
        assert_string_equal(content(all[i]->s, at.ino), "g1 from a");
    }
    assert_same_dump(a.s, b.s);
    assert_same_dump(a.s, c.s);
    close2(&a, &b);
    rep_close(&c);
}

/* An edit concurrent with a delete brings the file back, with a conflict
 * copy; b removes the copy (a DROP version) and the file is deleted again
 * there, while a, not having heard of the removal, writes to the file it
 * sees back. a's new version is no version the delete had seen: once
 * everything is exchanged the file shows on every node. b, which had
 * collected the file under the settled delete before that version
 * arrived, had nothing left to show it with: a version made after a
 * settled delete can still bring the file back when its writer held an
 * edit concurrent with the delete and not yet what hid it (replication
 * simulator long seed 1010, bare engine, with small files' content pushed
 * behind their ops). */
static void test_collect_waits_for_what_hid(void **state)
{
    (void)state;
    rep a, b, c;
    mesh3(&a, &b, &c);
    rep *all[3] = {&a, &b, &c};
    set_retention(&b, 0);
    uint64_t f = mkfile(a.s, MFS_ROOT_INO, "f");
    put_pub(a.s, f, "v0");
    sync_pair(&a, &b);
    sync_pair(&a, &c);
    /* c edits f; a edits it later and deletes it, not having seen c's edit */
    c.clk.ms += 1000;
    put_pub(c.s, ino_of(c.s, MFS_ROOT_INO, "f"), "v1 from c");
    a.clk.ms += 2000;
    put_pub(a.s, f, "v1 from a");
    a.clk.ms += 1000;
    assert_int_equal(mfs_store_unlink(a.s, MFS_ROOT_INO, "f"), 0);
    /* b hears of all of it: f is back (c's edit), c's version as a copy */
    sync_pair(&a, &b);
    sync_pair(&c, &b);
    char copy[MFS_NAME_MAX + 1];
    mfs_conflict_name(copy, sizeof(copy), "f", c.node, T0 + 1000);
    mfs_attr at;
    assert_int_equal(mfs_store_lookup(b.s, MFS_ROOT_INO, "f", &at), 0);
    assert_string_equal(content(b.s, at.ino), "v1 from a");
    assert_int_equal(mfs_store_lookup(b.s, MFS_ROOT_INO, copy, &at), 0);
    /* b removes the copy: nothing the delete had not seen is left there */
    b.clk.ms += 4000;
    assert_int_equal(mfs_store_unlink(b.s, MFS_ROOT_INO, copy), 0);
    assert_int_equal(mfs_store_lookup(b.s, MFS_ROOT_INO, "f", &at), -ENOENT);
    /* a hears of c's edit, not of the removal, and writes to f */
    sync_pair(&c, &a);
    assert_int_equal(mfs_store_lookup(a.s, MFS_ROOT_INO, "f", &at), 0);
    a.clk.ms += 1000;
    put_pub(a.s, at.ino, "v2 from a");
    /* every member holds what c holds (the delete among it): b collects */
    mfs_vv vv;
    assert_int_equal(mfs_store_vv(c.s, &vv), 0);
    mfs_store_collect_settled(b.s, &vv);
    mfs_vv_free(&vv);
    b.clk.ms += 10000;
    collect_later(&b, 0);
    sync_pair(&a, &b);
    sync_pair(&a, &c);
    sync_pair(&b, &c);
    for (int i = 0; i < 3; i++) {
        int rc = mfs_store_lookup(all[i]->s, MFS_ROOT_INO, "f", &at);
        if (rc)
            print_error("replica %d: f not back with a's new version (%d)\n",
                        i, rc);
        assert_int_equal(rc, 0);
        assert_string_equal(content(all[i]->s, at.ino), "v2 from a");
    }
    assert_same_dump(a.s, b.s);
    assert_same_dump(a.s, c.s);
    close2(&a, &b);
    rep_close(&c);
}

/* r collects with settled = what by holds (every member holds all that
 * by holds), three passes 5 s apart (a delete waits for the fold at the
 * end of a pass); the tombstones they dropped. */
static uint64_t collect_as_held_by(rep *r, rep *by)
{
    mfs_vv vv;
    assert_int_equal(mfs_store_vv(by->s, &vv), 0);
    mfs_store_collect_settled(r->s, &vv);
    mfs_vv_free(&vv);
    uint64_t n = 0;
    for (int i = 0; i < 3; i++)
        n += collect_later(r, 5000).tombstones;
    return n;
}

/* ln f g; rm g, as git does for every object (link(tmp, final) +
 * unlink(tmp)): once the delete is settled and folded, g's entry, its
 * logged moves and its raw links go while f stays. A node that still
 * holds g reads the versions that the collecting node writes later alike:
 * g does not come back, and b's and a's trees stay the same. */
static void test_collect_removed_link(void **state)
{
    (void)state;
    rep a, b;
    mesh2(&a, &b);
    set_retention(&a, 0);
    uint64_t f = mkfile(a.s, MFS_ROOT_INO, "f");
    put_pub(a.s, f, "v1");
    mfs_store_stats s0, s1;
    assert_int_equal(mfs_store_stats_get(a.s, &s0), 0);
    mfs_attr at;
    for (int i = 0; i < 10; i++) {
        char n[16];
        snprintf(n, sizeof n, "g%d", i);
        assert_int_equal(mfs_store_link(a.s, f, MFS_ROOT_INO, n, &at), 0);
        a.clk.ms += 10;
        assert_int_equal(mfs_store_unlink(a.s, MFS_ROOT_INO, n), 0);
    }
    assert_int_equal(mfs_store_stats_get(a.s, &s1), 0);
    assert_int_equal(s1.entry_records, s0.entry_records + 10);
    merge(&a, &b);
    /* both hold it all: settled on a (b collects nothing) */
    assert_int_equal(collect_as_held_by(&a, &b), 10);
    assert_int_equal(mfs_store_stats_get(a.s, &s1), 0);
    assert_int_equal(s1.entry_records, s0.entry_records);
    assert_true(s1.move_records <= s0.move_records);
    assert_int_equal(mfs_store_getattr(a.s, f, &at), 0);
    assert_int_equal(at.nlink, 1);
    assert_string_equal(content(a.s, f), "v1");
    /* a new version from a (which no longer holds the names) and one from
     * b (which does): neither brings a name back, on either node */
    a.clk.ms += 1000;
    put_pub(a.s, f, "v2 from a");
    merge(&a, &b);
    b.clk.ms += 2000;
    put_pub(b.s, ino_of(b.s, MFS_ROOT_INO, "f"), "v3 from b");
    merge(&a, &b);
    rep *rs[2] = {&a, &b};
    for (int r = 0; r < 2; r++) {
        mfs_store *s = rs[r]->s;
        for (int i = 0; i < 10; i++) {
            char n[16];
            snprintf(n, sizeof n, "g%d", i);
            assert_int_equal(mfs_store_lookup(s, MFS_ROOT_INO, n, &at),
                             -ENOENT);
        }
        assert_int_equal(mfs_store_lookup(s, MFS_ROOT_INO, "f", &at), 0);
        assert_int_equal(at.nlink, 1);
        assert_string_equal(content(s, at.ino), "v3 from b");
    }
    /* a name removed and brought back by an edit concurrent with its
     * delete stays shown, and the collector leaves it */
    assert_int_equal(mfs_store_link(a.s, f, MFS_ROOT_INO, "h", &at), 0);
    merge(&a, &b);
    a.clk.ms += 1000;
    assert_int_equal(mfs_store_unlink(a.s, MFS_ROOT_INO, "h"), 0);
    b.clk.ms += 1000;
    put_pub(b.s, ino_of(b.s, MFS_ROOT_INO, "f"), "v4 from b");
    merge(&a, &b);
    assert_int_equal(collect_as_held_by(&a, &b), 0);
    a.clk.ms += 1000;
    put_pub(a.s, f, "v5 from a");
    merge(&a, &b);
    for (int r = 0; r < 2; r++) {
        assert_int_equal(mfs_store_lookup(rs[r]->s, MFS_ROOT_INO, "h", &at), 0);
        assert_string_equal(content(rs[r]->s, at.ino), "v5 from a");
    }
    close2(&a, &b);
}

/* A directory deleted while a file was created in it elsewhere keeps its
 * tombstone while the file (shown in lost+found) has it as its raw
 * parent; once the file leaves it (here: deleted) and that is settled,
 * the directory's tombstone goes too. */
static void test_collect_dir_after_raw_child(void **state)
{
    (void)state;
    rep a, b;
    mesh2(&a, &b);
    set_retention(&a, 0);
    mfs_store_stats s0, s1;
    assert_int_equal(mfs_store_stats_get(a.s, &s0), 0);
    mkdir_(a.s, MFS_ROOT_INO, "d");
    sync_pair(&a, &b);
    a.clk.ms += 1000;
    assert_int_equal(mfs_store_rmdir(a.s, MFS_ROOT_INO, "d"), 0);
    b.clk.ms += 1000;
    put_pub(b.s, mkfile(b.s, ino_of(b.s, MFS_ROOT_INO, "d"), "x"), "x");
    merge(&a, &b);
    uint64_t lf = ino_of(a.s, MFS_ROOT_INO, "lost+found");
    mfs_attr at;
    assert_int_equal(mfs_store_lookup(a.s, lf, "x", &at), 0);
    assert_int_equal(collect_as_held_by(&a, &b), 0);
    assert_int_equal(mfs_store_stats_get(a.s, &s1), 0);
    assert_int_equal(s1.entry_records, s0.entry_records + 2); /* d, x */
    assert_int_equal(mfs_store_lookup(a.s, lf, "x", &at), 0);
    /* x goes: then d has no raw child left */
    a.clk.ms += 1000;
    assert_int_equal(mfs_store_unlink(a.s, lf, "x"), 0);
    merge(&a, &b);
    assert_int_equal(collect_as_held_by(&a, &b), 2);
    assert_int_equal(mfs_store_stats_get(a.s, &s1), 0);
    assert_int_equal(s1.entry_records, s0.entry_records);
    assert_int_equal(s1.inode_records, s0.inode_records);
    /* b, which still holds them, shows the same */
    b.clk.ms += 1000;
    mkdir_(b.s, MFS_ROOT_INO, "d");
    merge(&a, &b);
    /* two raw children: y is deleted (settled), z moved out of lost+found
     * by a move not settled yet: an undo of that move could put z back,
     * so e stays until it is settled */
    assert_int_equal(mfs_store_stats_get(a.s, &s0), 0);
    mkdir_(a.s, MFS_ROOT_INO, "e");
    sync_pair(&a, &b);
    a.clk.ms += 1000;
    assert_int_equal(mfs_store_rmdir(a.s, MFS_ROOT_INO, "e"), 0);
    b.clk.ms += 1000;
    uint64_t be = ino_of(b.s, MFS_ROOT_INO, "e");
    put_pub(b.s, mkfile(b.s, be, "y"), "y");
    put_pub(b.s, mkfile(b.s, be, "z"), "z");
    merge(&a, &b);
    a.clk.ms += 1000;
    assert_int_equal(mfs_store_unlink(a.s, lf, "y"), 0);
    merge(&a, &b);
    mfs_vv before;
    assert_int_equal(mfs_store_vv(b.s, &before), 0);
    b.clk.ms += 10000;
    assert_int_equal(mfs_store_rename(b.s,
                                      ino_of(b.s, MFS_ROOT_INO, "lost+found"),
                                      "z", MFS_ROOT_INO, "z", 0),
                     0);
    merge(&a, &b);
    mfs_store_collect_settled(a.s, &before);
    mfs_vv_free(&before);
    for (int i = 0; i < 3; i++)
        collect_later(&a, 5000);
    assert_int_equal(mfs_store_stats_get(a.s, &s1), 0);
    assert_int_equal(s1.entry_records, s0.entry_records + 2); /* e, z */
    assert_int_equal(collect_as_held_by(&a, &b), 1);          /* e */
    assert_int_equal(mfs_store_stats_get(a.s, &s1), 0);
    assert_int_equal(s1.entry_records, s0.entry_records + 1); /* z */
    assert_int_equal(mfs_store_lookup(a.s, MFS_ROOT_INO, "z", &at), 0);
    assert_string_equal(content(a.s, at.ino), "z");
    merge(&a, &b);
    close2(&a, &b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_replicate_basic, teardown),
        cmocka_unit_test_teardown(test_join_gets_lostfound, teardown),
        cmocka_unit_test_teardown(test_small_batches, teardown),
        cmocka_unit_test_teardown(test_batch_prefix, teardown),
        cmocka_unit_test_teardown(test_idempotent_any_order, teardown),
        cmocka_unit_test_teardown(test_malformed, teardown),
        cmocka_unit_test_teardown(test_remote_bad_names, teardown),
        cmocka_unit_test_teardown(test_future_stamps, teardown),
        cmocka_unit_test_teardown(test_conflict_concurrent_edit, teardown),
        cmocka_unit_test_teardown(test_conflict_same_name_create, teardown),
        cmocka_unit_test_teardown(test_edit_vs_delete, teardown),
        cmocka_unit_test_teardown(test_edit_after_hardlink_delete, teardown),
        cmocka_unit_test_teardown(test_edit_vs_delete_dir, teardown),
        cmocka_unit_test_teardown(test_rename_cycle, teardown),
        cmocka_unit_test_teardown(test_unlinked_temp_never_replicates,
                                  teardown),
        cmocka_unit_test_teardown(test_attr_xattr_lww, teardown),
        cmocka_unit_test_teardown(test_apply_grows_map, teardown),
        cmocka_unit_test_teardown(test_collect_overwrites_then_delete,
                                  teardown),
        cmocka_unit_test_teardown(test_collect_retention, teardown),
        cmocka_unit_test_teardown(test_collect_waits_for_settled, teardown),
        cmocka_unit_test_teardown(test_collect_keeps_pinned, teardown),
        cmocka_unit_test_teardown(test_collect_shared_chunks, teardown),
        cmocka_unit_test_teardown(test_collect_tombstones, teardown),
        cmocka_unit_test_teardown(test_away_node_wants_last_version_only,
                                  teardown),
        cmocka_unit_test_teardown(test_mixed_chunking, teardown),
        cmocka_unit_test_teardown(test_trash_restore, teardown),
        cmocka_unit_test_teardown(test_member_remove, teardown),
        cmocka_unit_test_teardown(test_fold_and_snapshot, teardown),
        cmocka_unit_test_teardown(test_member_join, teardown),
        cmocka_unit_test_teardown(test_invited, teardown),
        cmocka_unit_test_teardown(test_rejoin_recover, teardown),
        cmocka_unit_test_teardown(test_snapshot_keeps_held_versions, teardown),
        cmocka_unit_test_teardown(test_snapshot_keeps_superseded, teardown),
        cmocka_unit_test_teardown(test_snapshot_formats, teardown),
        cmocka_unit_test_teardown(test_snapshot_file, teardown),
        cmocka_unit_test_teardown(test_snapshot_keeps_superseded_absent,
                                  teardown),
        cmocka_unit_test_teardown(test_two_deletes_union, teardown),
        cmocka_unit_test_teardown(test_collect_waits_for_what_hid, teardown),
        cmocka_unit_test_teardown(test_collect_removed_link, teardown),
        cmocka_unit_test_teardown(test_collect_dir_after_raw_child, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
