/*
 * test_store_converge.c - randomized convergence of N replicas (P6, P7, P8).
 *
 * Per seed: 3-5 replicas in temp stores share one mesh (replica 0 creates
 * it, the others join and take its initial ops). Then random steps: local
 * ops on a random replica (create files/dirs from a small name pool so names
 * clash, writes at random offsets including sparse ones, truncates, renames
 * of files and directories into each other (provoking cycles), NOREPLACE and
 * EXCHANGE renames, unlinks of files others edit, rmdir, hard links,
 * symlinks, xattrs, chmod) interleaved with partial exchanges between random
 * pairs: the ops of a batch are dropped, duplicated, shuffled and regrouped,
 * the rest is resent later from the version vector; chunks move partially.
 * Clocks are per replica, skewed by up to 30 s (below the 60 s bound).
 * Collection runs too (settle_step, 6% of the other steps): a stable
 * vector taken over every replica is given to one once it holds what
 * every replica had originated, as sync/repl.c does, and the replica
 * folds its op log and forgets settled moves (the trash keeps versions:
 * its 7 days never pass here); the run fails if over 20+ seeds nothing
 * was folded or forgotten. With MESHFS_TRASH0 set the trash keeps
 * nothing, so superseded versions and deleted files' content are dropped
 * too (and the run fails if none was).
 * At the end the tracked dirty files are published, files without a name
 * are forgotten, mfs_store_publish_all(s, 0) runs on every replica (as an
 * unmount does), and replicas exchange until quiescent (identical version
 * vectors, ops_since empty both ways, no chunk wanted). Then:
 *  1. all mfs_store_dump outputs are byte-identical;
 *  2. on every replica the tree walked from the root with readdir is acyclic
 *     (no directory reached twice, parent() matches), lookup of each listed
 *     name gives the listed ino, nlink of files = number of names found, of
 *     dirs = 2 + subdirectories, and stats agree with the walk (ranges
 *     where a conflict copy cannot be told from a file black-box);
 *  3. no silent loss: every content version any replica published (its
 *     (file id, stamp) from mfs_store_file_info and a hash of its bytes
 *     read right after the publish) is shown by a visible file or conflict
 *     copy: first looked up by (file id, stamp) -- then the bytes must
 *     match -- else by its bytes in any regular file (a conflict copy whose
 *     file lost its last name, or that was written, becomes a file of its
 *     own with a new id). Excused are versions that were superseded (a
 *     version published on top of it, or of a descendant) and versions a
 *     replica had when it removed a name: the version file_info showed on
 *     the removed name, or the removed object's bytes.
 *     Weakenings, deliberately: removing ANY name of a hard-linked file
 *     counts as deleting it (for the version that replica showed); byte
 *     matching cannot tell apart versions with equal bytes (e.g. empty
 *     ones); versions published by the final publish_all for files that
 *     once lost their name are recorded with the base of their writes;
 *  4. every regular file created and never removed by anyone is visible.
 * Local calls may fail only with the errnos a local filesystem gives.
 *
 * Usage: test_store_converge [first_seed [count [steps_per_replica]]]
 * (default 1 200 150: ~0.5 s a seed); MESHFS_SEED=N runs only seed N (with
 * MESHFS_STEPS=S if the failing run used other steps). A failure prints the
 * seed and step and saves each replica's dump in $TMPDIR.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "store.h"
#include "randops.h"
#include "testutil.h"

#define T0 1700000000000ull
#define BATCH_CAP (8u << 20)
#define MAXR 5

static uint64_t g_first = 1, g_count = 200, g_seed, g_steps = 150;
static uint64_t g_folded, g_moves; /* by collection, over all seeds */
/* MESHFS_TRASH0: the trash keeps nothing (retention 0), so collection also
 * drops superseded versions and deleted files' content as soon as they
 * are settled: the oracle's "no silent loss" then checks that it drops
 * nothing a replica still shows or could still show */
static int g_trash0;
static uint64_t g_versions, g_inodes; /* dropped, over all seeds */
static int g_verbose;

/* ---- bookkeeping for the oracle ---------------------------------------- */

typedef struct vkey {
    mfs_id id;
    mfs_stamp st;
} vkey;

static int id_eq(mfs_id a, mfs_id b)
{
    return a.node == b.node && a.seq == b.seq;
}

static int vkey_eq(vkey a, vkey b)
{
    return a.id.node == b.id.node && a.id.seq == b.id.seq &&
           a.st.hlc == b.st.hlc && a.st.node == b.st.node;
}

typedef struct version {
    vkey k;
    vkey parent;
    uint64_t hash;
    int rep;
    int excused;
    int step;
} version;

typedef struct dirty {
    uint64_t ino;
    vkey base;
} dirty;

typedef struct rep {
    char *dir;
    tclock clk;
    mfs_store *s;
    uint64_t node;
    dirty *dv;
    size_t ndv, capdv;
    dirty
        *limbo; /* publish found no name: writes kept, maybe published later */
    size_t nlimbo, caplimbo;
    /* collection: a stable vector S taken over every replica, given to
     * this one once it holds what every replica had originated then (W),
     * as sync/repl.c does */
    mfs_vv cand_s, cand_w;
    int have_cand;
} rep;

typedef struct world {
    mfs_rng rng;
    randops ro; /* the random ops' picks, drawing from rng */
    int nrep;
    rep r[MAXR];
    version *v;
    size_t nv, capv;
    vkey *del; /* (id, version shown) removed by someone */
    size_t ndel, capdel;
    int *delrep, *delstep; /* who removed it, when (diagnostics) */
    size_t ndelrep, capdelrep, ndelstep, capdelstep;
    uint64_t *delhash; /* the bytes the remover saw */
    size_t ndelhash, capdelhash;
    mfs_id *created;
    size_t ncreated, capcreated;
    mfs_id *removed;
    size_t nremoved, capremoved;
    uint8_t *buf;
    int step;
    size_t nops_applied;
    size_t nameless_dirty; /* publishes of nameless files that stayed dirty */
    size_t untracked;      /* own versions seen that no tracked call made */
    struct {
        int rep;
        uint64_t ino;
        mfs_id id;
    } nameless[256];
    size_t nnameless;
} world;

#define PUSH(arr, n, cap, val)                                                 \
    do {                                                                       \
        if ((n) == (cap)) {                                                    \
            (cap) = (cap) ? (cap)*2 : 64;                                      \
            (arr) = realloc((arr), (cap) * sizeof(*(arr)));                    \
            assert_non_null(arr);                                              \
        }                                                                      \
        (arr)[(n)++] = (val);                                                  \
    } while (0)

struct world;
static void save_dumps(struct world *w);

#define FAILF(...)                                                             \
    do {                                                                       \
        print_error("seed %llu step %d: ", (unsigned long long)g_seed,         \
                    w->step);                                                  \
        print_error(__VA_ARGS__);                                              \
        save_dumps(w);                                                         \
        fail();                                                                \
    } while (0)

static uint64_t fnv(const uint8_t *p, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static uint64_t content_hash(world *w, mfs_store *s, uint64_t ino, int *ok)
{
    static uint8_t buf[1 << 20];
    ssize_t n = mfs_store_read(s, ino, 0, buf, sizeof(buf));
    if (n < 0) {
        *ok = 0;
        return 0;
    }
    *ok = 1;
    uint64_t h = fnv(buf, (size_t)n, 0xcbf29ce484222325ull);
    uint8_t sz[8];
    for (int i = 0; i < 8; i++)
        sz[i] = (uint8_t)((uint64_t)n >> (8 * i));
    return fnv(sz, 8, h);
}

/* ---- replicas and exchange --------------------------------------------- */

static void rep_open(world *w, rep *r, int new_mesh, uint64_t node,
                     uint64_t skew)
{
    memset(r, 0, sizeof(*r));
    r->dir = mfs_test_mkdtemp("conv");
    r->clk.ms = T0 + skew;
    mfs_store_config cfg;
    mfs_test_store_config(&cfg, &r->clk);
    cfg.new_mesh = new_mesh;
    cfg.node_id = node;
    cfg.map_size = 4u << 20;
    int rc = mfs_store_open(&r->s, r->dir, &cfg,
                            MFS_STORE_CREATE | MFS_STORE_NOLOCK);
    if (rc)
        FAILF("open: %d %s\n", rc, mfs_store_strerror(rc));
    r->node = mfs_store_node_id(r->s);
    if (g_trash0) {
        mfs_collect_config cc = {.retention_ms = 0, .period_ms = 1000,
                                 .share_pct = 100};
        mfs_store_collect_set(r->s, &cc);
    }
}

static void rep_close(rep *r)
{
    mfs_vv_free(&r->cand_s);
    mfs_vv_free(&r->cand_w);
    mfs_store_close(r->s);
    mfs_test_rmdir(r->dir);
    free(r->dv);
    free(r->limbo);
    memset(r, 0, sizeof(*r));
}

typedef struct opref {
    size_t off, len;
} opref;

static size_t split_batch(world *w, const uint8_t *b, size_t n, opref *out,
                          size_t max)
{
    size_t k = 0, off = 0;
    while (off < n) {
        if (n - off < 4)
            FAILF("batch from ops_since has a torn length\n");
        uint32_t l = ((uint32_t)b[off] << 24) | ((uint32_t)b[off + 1] << 16) |
                     ((uint32_t)b[off + 2] << 8) | b[off + 3];
        if (l == 0 || l > n - off - 4)
            FAILF("batch from ops_since has a bad length %u\n", l);
        if (k < max) {
            out[k].off = off;
            out[k].len = 4 + l;
            k++;
        }
        off += 4 + l;
    }
    return k;
}

static void apply_ok(world *w, int to, const uint8_t *b, size_t n,
                     mfs_apply_result *res)
{
    int rc = mfs_store_apply(w->r[to].s, b, n, res);
    if (rc) {
        mfs_store_stats st;
        memset(&st, 0, sizeof(st));
        mfs_store_stats_get(w->r[to].s, &st);
        FAILF("apply of %zu bytes to replica %d: %d (store file %llu bytes, "
              "map %llu bytes, %llu ops)\n",
              n, to, rc, (unsigned long long)st.store_bytes,
              (unsigned long long)st.map_bytes, (unsigned long long)st.ops);
    }
    if (res->deferred)
        FAILF("replica %d deferred %zu ops (skew is below the bound)\n", to,
              res->deferred);
    w->nops_applied += res->applied;
}

static ssize_t batch_for(world *w, int from, int to, size_t cap)
{
    mfs_vv vv;
    assert_int_equal(mfs_store_vv(w->r[to].s, &vv), 0);
    ssize_t n = mfs_store_ops_since(w->r[from].s, &vv, w->buf, cap);
    mfs_vv_free(&vv);
    if (n < 0 && n != -ENOBUFS)
        FAILF("ops_since %d -> %d: %zd\n", from, to, n);
    return n;
}

/* Moves chunks `to` wants from whoever has them; with partial, only some. */
static size_t move_chunks(world *w, int to, int partial)
{
    static uint8_t hashes[128 * MFS_HASH_LEN];
    static uint8_t data[MFS_CHUNK_SIZE];
    size_t moved = 0;
    for (int guard = 0; guard < 1000; guard++) {
        ssize_t n = mfs_store_chunks_wanted(w->r[to].s, hashes, 128);
        if (n < 0)
            FAILF("chunks_wanted: %zd\n", n);
        if (n == 0)
            break;
        size_t before = moved;
        for (ssize_t i = 0; i < n; i++) {
            if (partial && mfs_rng_below(&w->rng, 2))
                continue;
            const uint8_t *h = hashes + i * MFS_HASH_LEN;
            for (int j = 0; j < w->nrep; j++) {
                if (j == to || mfs_store_chunk_has(w->r[j].s, h) != 1)
                    continue;
                ssize_t len =
                    mfs_store_chunk_get(w->r[j].s, h, data, sizeof(data));
                if (len < 0)
                    FAILF("chunk_get from %d: %zd\n", j, len);
                int rc = mfs_store_chunk_put(w->r[to].s, h, data, (size_t)len);
                if (rc)
                    FAILF("chunk_put to %d: %d\n", to, rc);
                moved++;
                break;
            }
        }
        if (partial || moved == before)
            break;
    }
    return moved;
}

/* A lossy, reordering, duplicating delivery of what `from` has for `to`. */
static void partial_exchange(world *w, int from, int to)
{
    static opref ops[8192];
    static uint8_t *out;
    if (!out)
        out = malloc(BATCH_CAP);
    size_t caps[] = {BATCH_CAP, 4096, 700};
    size_t cap = caps[mfs_rng_below(&w->rng, 3)];
    ssize_t n = batch_for(w, from, to, cap);
    if (n == -ENOBUFS)
        n = batch_for(w, from, to, BATCH_CAP);
    if (n <= 0)
        return;
    size_t k = split_batch(w, w->buf, (size_t)n, ops, 8192);
    int mode = (int)mfs_rng_below(&w->rng, 4);
    mfs_apply_result res;
    if (mode == 0) { /* as is */
        apply_ok(w, to, w->buf, (size_t)n, &res);
    } else {
        /* pick, duplicate, shuffle, regroup */
        size_t *sel = malloc((2 * k + 1) * sizeof(*sel)), ns = 0;
        for (size_t i = 0; i < k; i++) {
            if (mfs_rng_below(&w->rng, 10) < 3)
                continue; /* dropped */
            sel[ns++] = i;
            if (mfs_rng_below(&w->rng, 10) == 0)
                sel[ns++] = i; /* duplicated */
        }
        if (mode >= 2)
            for (size_t i = ns; i > 1; i--) {
                size_t j = (size_t)mfs_rng_below(&w->rng, i);
                size_t t = sel[i - 1];
                sel[i - 1] = sel[j];
                sel[j] = t;
            }
        size_t i = 0;
        while (i < ns) {
            size_t g = 1 + (size_t)mfs_rng_below(&w->rng, 5);
            size_t len = 0;
            for (size_t j = i; j < ns && j < i + g; j++) {
                memcpy(out + len, w->buf + ops[sel[j]].off, ops[sel[j]].len);
                len += ops[sel[j]].len;
            }
            apply_ok(w, to, out, len, &res);
            i += g;
        }
        free(sel);
    }
    if (mfs_rng_below(&w->rng, 2))
        move_chunks(w, to, 1);
}

/* Full exchange between all pairs until nothing moves. */
static void quiesce(world *w)
{
    for (int round = 0; round < 50; round++) {
        size_t moved = 0;
        for (int i = 0; i < w->nrep; i++)
            for (int j = 0; j < w->nrep; j++) {
                if (i == j)
                    continue;
                for (int guard = 0; guard < 1000; guard++) {
                    ssize_t n = batch_for(w, i, j, BATCH_CAP);
                    if (n <= 0)
                        break;
                    mfs_apply_result res;
                    apply_ok(w, j, w->buf, (size_t)n, &res);
                    moved += res.applied;
                    if (!res.applied)
                        break; /* i may have a gap only a third fills */
                }
            }
        for (int j = 0; j < w->nrep; j++)
            moved += move_chunks(w, j, 0);
        if (!moved)
            break;
    }
    /* quiescent: identical version vectors, nothing left to send */
    for (int i = 0; i < w->nrep; i++)
        for (int j = 0; j < w->nrep; j++) {
            if (i == j)
                continue;
            mfs_vv vi, vj;
            assert_int_equal(mfs_store_vv(w->r[i].s, &vi), 0);
            assert_int_equal(mfs_store_vv(w->r[j].s, &vj), 0);
            uint64_t miss = mfs_vv_missing(&vi, &vj);
            mfs_vv_free(&vi);
            mfs_vv_free(&vj);
            if (miss)
                FAILF("after full exchange replica %d still lacks %llu ops "
                      "of replica %d's vv\n",
                      j, (unsigned long long)miss, i);
            ssize_t n = batch_for(w, i, j, BATCH_CAP);
            if (n != 0)
                FAILF("after full exchange ops_since %d -> %d still gives "
                      "%zd bytes\n",
                      i, j, n);
        }
    for (int j = 0; j < w->nrep; j++) {
        uint8_t h[MFS_HASH_LEN];
        ssize_t n = mfs_store_chunks_wanted(w->r[j].s, h, 1);
        if (n != 0)
            FAILF("replica %d still wants chunks nobody holds\n", j);
    }
}

/* ---- local ops ---------------------------------------------------------- */

/* ---- collection: folds the op log and forgets settled moves (the
 * trash keeps versions: its 7 days never pass here) ---- */

static int vv_covers(const mfs_vv *a, const mfs_vv *b)
{
    for (size_t i = 0; i < b->n; i++)
        if (mfs_vv_get(a, b->e[i].node) < b->e[i].seq)
            return 0;
    return 1;
}

static void settle_step(world *w, int ri)
{
    rep *r = &w->r[ri];
    mfs_vv mine;
    if (mfs_store_vv(r->s, &mine))
        FAILF("vv of replica %d\n", ri);
    if (!r->have_cand) {
        /* S: the entrywise minimum over every replica; W: what each had
         * originated */
        mfs_vv_free(&r->cand_s);
        mfs_vv_free(&r->cand_w);
        r->cand_s.e = calloc(mine.n + 1, sizeof(mfs_vv_entry));
        r->cand_w.e = calloc((size_t)w->nrep + 1, sizeof(mfs_vv_entry));
        assert_non_null(r->cand_s.e);
        assert_non_null(r->cand_w.e);
        mfs_vv all[MAXR];
        for (int i = 0; i < w->nrep; i++)
            if (mfs_store_vv(w->r[i].s, &all[i]))
                FAILF("vv of replica %d\n", i);
        for (size_t k = 0; k < mine.n; k++) {
            uint64_t m = mine.e[k].seq;
            for (int i = 0; i < w->nrep; i++) {
                uint64_t v = mfs_vv_get(&all[i], mine.e[k].node);
                m = v < m ? v : m;
            }
            r->cand_s.e[r->cand_s.n].node = mine.e[k].node;
            r->cand_s.e[r->cand_s.n++].seq = m;
        }
        for (int i = 0; i < w->nrep; i++) {
            r->cand_w.e[r->cand_w.n].node = w->r[i].node;
            r->cand_w.e[r->cand_w.n++].seq =
                mfs_vv_get(&all[i], w->r[i].node);
            mfs_vv_free(&all[i]);
        }
        r->have_cand = 1;
    } else if (vv_covers(&mine, &r->cand_w)) {
        mfs_store_collect_settled(r->s, &r->cand_s);
        mfs_collect_stats st;
        int rc = mfs_store_collect_now(r->s, &st);
        if (rc)
            FAILF("collection on replica %d: %d\n", ri, rc);
        g_folded += st.folded;
        g_moves += st.moves;
        g_versions += st.versions;
        g_inodes += st.inodes;
        r->have_cand = 0;
    }
    mfs_vv_free(&mine);
}

static const char *const file_pool[] = {"a",     "b",       "c.txt",
                                         "d.txt", ".hidden", "e"};
static const char *const dir_pool[] = {"D", "E", "F"};

typedef randops_ent ent;
typedef randops_ents ents;

/* The shared generator (randops.h) fails through FAILF. */
static void ro_fail(void *arg, const char *msg)
{
    world *w = arg;
    FAILF("%s", msg);
}

static void ls(world *w, mfs_store *s, uint64_t dir, ents *l)
{
    randops_ls(&w->ro, s, dir, l);
}

static int is_copy(const char *name)
{
    return randops_is_copy(name);
}

static uint64_t pick_dir(world *w, mfs_store *s)
{
    return randops_pick_dir(&w->ro, s);
}

/* A random entry of a random dir matching want (0 any, S_IFREG, S_IFDIR). */
static int pick_entry(world *w, mfs_store *s, uint32_t want, int copies,
                      uint64_t *dir, ent *out)
{
    return randops_pick_entry(&w->ro, s, want, copies, dir, out);
}

static void check_errno(world *w, const char *what, int rc)
{
    if (rc && !randops_errno_expected(rc))
        FAILF("%s: unexpected %d\n", what, rc);
}

static dirty *dirty_find(rep *r, uint64_t ino)
{
    for (size_t i = 0; i < r->ndv; i++)
        if (r->dv[i].ino == ino)
            return &r->dv[i];
    return NULL;
}

static vkey vkey_of(const mfs_file_info *fi)
{
    vkey k = {fi->id, fi->version};
    return k;
}

static int recorded(world *w, vkey k)
{
    for (size_t i = w->nv; i-- > 0;)
        if (vkey_eq(w->v[i].k, k))
            return 1;
    return 0;
}

static uint64_t content_hash(world *w, mfs_store *s, uint64_t ino, int *ok);

/* A file whose publish found no name keeps its writes; when it gets a name
 * back they are published later (publish_all). Records that version, with
 * the base the writes started from, once it shows. Returns the limbo slot
 * still pending for ino, or NULL. */
static dirty *adopt_limbo(world *w, int ri, uint64_t ino)
{
    rep *r = &w->r[ri];
    for (size_t i = 0; i < r->nlimbo; i++) {
        if (r->limbo[i].ino != ino)
            continue;
        mfs_file_info fi;
        if (mfs_store_file_info(r->s, ino, &fi, NULL, 0))
            return NULL;
        if (fi.dirty)
            return &r->limbo[i];
        vkey k = vkey_of(&fi);
        if (fi.version.node == r->node && !vkey_eq(k, r->limbo[i].base) &&
            !recorded(w, k)) {
            int ok;
            version v = {
                k, r->limbo[i].base, content_hash(w, r->s, ino, &ok), ri,
                0, w->step};
            if (ok)
                PUSH(w->v, w->nv, w->capv, v);
        }
        r->limbo[i] = r->limbo[--r->nlimbo];
        return NULL;
    }
    return NULL;
}

/* Before a content change of ino on replica ri: remember the base. */
static void before_write(world *w, int ri, uint64_t ino)
{
    rep *r = &w->r[ri];
    if (dirty_find(r, ino))
        return;
    dirty *l = adopt_limbo(w, ri, ino);
    if (l) { /* still unpublished: the same writes go on */
        dirty d = *l;
        *l = r->limbo[--r->nlimbo];
        PUSH(r->dv, r->ndv, r->capdv, d);
        return;
    }
    mfs_file_info fi;
    int rc = mfs_store_file_info(r->s, ino, &fi, NULL, 0);
    if (rc)
        FAILF("file_info before write: %d\n", rc);
    if (fi.version.node == r->node && !recorded(w, vkey_of(&fi)))
        w->untracked++;
    dirty d = {ino, vkey_of(&fi)};
    PUSH(r->dv, r->ndv, r->capdv, d);
}

static void publish(world *w, int ri, size_t di)
{
    rep *r = &w->r[ri];
    dirty d = r->dv[di];
    r->dv[di] = r->dv[--r->ndv];
    int rc = mfs_store_publish(r->s, d.ino);
    if (rc)
        FAILF("publish: %d\n", rc);
    mfs_file_info fi;
    rc = mfs_store_file_info(r->s, d.ino, &fi, NULL, 0);
    if (rc == -ENOENT)
        return;
    if (rc)
        FAILF("file_info after publish: %d\n", rc);
    if (fi.dirty) {
        /* A file without a name keeps nothing to publish; whether its
         * dropped writes still count as dirty is checked by
         * test_store_replica (test_unlinked_temp_never_replicates). */
        mfs_attr a;
        if (mfs_store_getattr(r->s, d.ino, &a) == 0 && a.nlink == 0) {
            w->nameless_dirty++;
            PUSH(r->limbo, r->nlimbo, r->caplimbo, d);
            mfs_file_info nf;
            if (w->nnameless < 256 &&
                mfs_store_file_info(r->s, d.ino, &nf, NULL, 0) == 0) {
                w->nameless[w->nnameless].rep = ri;
                w->nameless[w->nnameless].ino = d.ino;
                w->nameless[w->nnameless++].id = nf.id;
            }
            if (mfs_rng_below(&w->rng, 2)) /* the kernel let go of it */
                mfs_store_forget(r->s, d.ino);
            return;
        }
        FAILF("still dirty after publish (nlink %u)\n",
              mfs_store_getattr(r->s, d.ino, &a) ? 0 : a.nlink);
    }
    vkey k = vkey_of(&fi);
    if (vkey_eq(k, d.base) || fi.version.node != r->node)
        return; /* nothing published (no name left) */
    int ok;
    version v = {k, d.base, content_hash(w, r->s, d.ino, &ok), ri, 0, w->step};
    if (!ok)
        FAILF("read after publish failed\n");
    PUSH(w->v, w->nv, w->capv, v);
}

static void publish_some(world *w, int ri, int all)
{
    rep *r = &w->r[ri];
    for (size_t i = r->ndv; i-- > 0;)
        if (all || mfs_rng_below(&w->rng, 2))
            publish(w, ri, i);
}

/* Records that replica ri is about to remove a name of a regular file. */
typedef struct pending_del {
    int valid;
    int rep;
    vkey k;
    uint64_t hash; /* bytes the remover saw */
} pending_del;

static pending_del note_removal(world *w, int ri, uint64_t ino)
{
    pending_del p = {0};
    mfs_attr a;
    if (mfs_store_getattr(w->r[ri].s, ino, &a) || !S_ISREG(a.mode))
        return p;
    mfs_file_info fi;
    if (mfs_store_file_info(w->r[ri].s, ino, &fi, NULL, 0))
        return p;
    p.valid = 1;
    p.rep = ri;
    p.k = vkey_of(&fi);
    int ok;
    p.hash = content_hash(w, w->r[ri].s, ino, &ok);
    return p;
}

static void commit_removal(world *w, pending_del p)
{
    if (!p.valid)
        return;
    PUSH(w->del, w->ndel, w->capdel, p.k);
    PUSH(w->delrep, w->ndelrep, w->capdelrep, p.rep);
    PUSH(w->delstep, w->ndelstep, w->capdelstep, w->step);
    PUSH(w->delhash, w->ndelhash, w->capdelhash, p.hash);
    PUSH(w->removed, w->nremoved, w->capremoved, p.k.id);
}

static void fill(world *w, uint8_t *p, size_t n)
{
    uint64_t x = mfs_rng_next(&w->rng);
    for (size_t i = 0; i < n; i++) {
        if (i % 8 == 0)
            x = x * 6364136223846793005ull + 1442695040888963407ull;
        p[i] = (uint8_t)(x >> (8 * (i % 8)));
    }
}

static void local_op(world *w, int ri)
{
    rep *r = &w->r[ri];
    mfs_store *s = r->s;
    int rc;
    mfs_attr a;
    ents l;
    uint64_t dir;
    ent e;
    char what[600];
    int op = (int)mfs_rng_below(&w->rng, 100);
    if (op < 12) { /* create a file */
        dir = pick_dir(w, s);
        const char *n = randops_file(&w->ro);
        rc = mfs_store_mknod(s, dir, n, S_IFREG | 0644, 0, 1000, 1000, &a);
        check_errno(w, "mknod", rc);
        if (rc == 0) {
            mfs_file_info fi;
            if (mfs_store_file_info(s, a.ino, &fi, NULL, 0))
                FAILF("file_info of a new file\n");
            PUSH(w->created, w->ncreated, w->capcreated, fi.id);
            mfs_attr b;
            if (mfs_store_lookup(s, dir, n, &b) || b.ino != a.ino)
                FAILF("new file %s not found by lookup\n", n);
            if (mfs_rng_below(&w->rng, 2)) { /* with content */
                uint8_t buf[300];
                fill(w, buf, sizeof(buf));
                before_write(w, ri, a.ino);
                if (mfs_store_write(s, a.ino, 0, buf, sizeof(buf)) !=
                    (ssize_t)sizeof(buf))
                    FAILF("write to new file\n");
            }
        }
    } else if (op < 18) { /* mkdir */
        dir = pick_dir(w, s);
        rc = mfs_store_mkdir(s, dir, randops_dirname(&w->ro), 0755,
                             0, 0, &a);
        check_errno(w, "mkdir", rc);
    } else if (op < 40) { /* write */
        if (!pick_entry(w, s, S_IFREG, 0, &dir, &e))
            return;
        static uint8_t buf[3 * MFS_CHUNK_SIZE];
        rc = mfs_store_getattr(s, e.ino, &a);
        if (rc)
            FAILF("getattr of a listed file: %d\n", rc);
        size_t len;
        uint64_t off;
        randops_pick_write(&w->ro, a.size, sizeof(buf), 6 * MFS_CHUNK_SIZE,
                           &len, &off);
        fill(w, buf, len);
        before_write(w, ri, e.ino);
        ssize_t n = mfs_store_write(s, e.ino, off, buf, len);
        if (n != (ssize_t)len)
            FAILF("write %zu at %llu: %zd\n", len, (unsigned long long)off, n);
        uint8_t back[64];
        size_t cl = len < 64 ? len : 64;
        if (mfs_store_read(s, e.ino, off, back, cl) != (ssize_t)cl ||
            memcmp(back, buf, cl))
            FAILF("read after write differs\n");
        if (mfs_rng_below(&w->rng, 10) < 7) {
            dirty *d = dirty_find(r, e.ino);
            publish(w, ri, (size_t)(d - r->dv));
        }
    } else if (op < 45) { /* truncate */
        if (!pick_entry(w, s, S_IFREG, 0, &dir, &e))
            return;
        mfs_setattr sa = {
            .mask = MFS_SET_SIZE,
            .size = (uint64_t)mfs_rng_below(&w->rng, 2 * MFS_CHUNK_SIZE)};
        before_write(w, ri, e.ino);
        rc = mfs_store_setattr(s, e.ino, &sa, &a);
        if (rc || a.size != sa.size)
            FAILF("truncate: %d\n", rc);
        if (mfs_rng_below(&w->rng, 2)) {
            dirty *d = dirty_find(r, e.ino);
            publish(w, ri, (size_t)(d - r->dv));
        }
    } else if (op < 58) { /* rename */
        if (!pick_entry(w, s, 0, 0, &dir, &e))
            return;
        uint64_t nd = pick_dir(w, s);
        unsigned fl;
        const char *nn = randops_pick_rename(&w->ro, e.mode, &fl);
        pending_del pd = {0};
        mfs_attr t;
        ls(w, s, dir, &l);
        int same = 0; /* names of this inode in the source dir */
        for (size_t i = 0; i < l.n; i++)
            same += l.v[i].ino == e.ino;
        int target = mfs_store_lookup(s, nd, nn, &t) == 0;
        if (target && !fl && t.ino != e.ino)
            pd = note_removal(w, ri, t.ino);
        rc = mfs_store_rename(s, dir, e.name, nd, nn, fl);
        snprintf(what, sizeof(what), "rename %s -> %s fl %u", e.name, nn, fl);
        check_errno(w, what, rc);
        if (rc == 0) {
            commit_removal(w, pd);
            mfs_attr b;
            if (mfs_store_lookup(s, nd, nn, &b) || b.ino != e.ino)
                FAILF("%s: target name does not show the source\n", what);
            if (fl == MFS_RENAME_EXCHANGE) {
                if (mfs_store_lookup(s, dir, e.name, &b) || b.ino != t.ino)
                    FAILF("%s: exchange lost the other side\n", what);
            } else if (!(dir == nd && !strcmp(e.name, nn)) &&
                       !(target && t.ino == e.ino)) {
                /* another file of the same name may surface (a same-name
                 * group), but not the one just moved */
                if (mfs_store_lookup(s, dir, e.name, &b) == 0 &&
                    b.ino == e.ino && same == 1)
                    FAILF("%s: source name still there\n", what);
            }
        } else if (rc == -EEXIST && fl != MFS_RENAME_NOREPLACE) {
            FAILF("%s: EEXIST without NOREPLACE\n", what);
        }
    } else if (op < 66) { /* unlink (conflict copies too) */
        if (!pick_entry(w, s, 0, 1, &dir, &e) || S_ISDIR(e.mode))
            return;
        pending_del pd = note_removal(w, ri, e.ino);
        ls(w, s, dir, &l);
        int same = 0; /* names of this inode in this dir */
        for (size_t i = 0; i < l.n; i++)
            same += l.v[i].ino == e.ino;
        rc = mfs_store_unlink(s, dir, e.name);
        check_errno(w, "unlink", rc);
        if (rc)
            FAILF("unlink of a listed name %s: %d\n", e.name, rc);
        commit_removal(w, pd);
        if (mfs_store_lookup(s, dir, e.name, &a) == 0 && a.ino == e.ino &&
            same == 1 && !is_copy(e.name))
            FAILF("unlinked name %s still there\n", e.name);
    } else if (op < 70) { /* rmdir */
        if (!pick_entry(w, s, S_IFDIR, 0, &dir, &e))
            return;
        ls(w, s, e.ino, &l);
        rc = mfs_store_rmdir(s, dir, e.name);
        check_errno(w, "rmdir", rc);
        if (!strcmp(e.name, "lost+found") && rc == -EBUSY)
            return;
        if (l.n && rc != -ENOTEMPTY)
            FAILF("rmdir of non-empty %s: %d\n", e.name, rc);
        if (!l.n && rc && strcmp(e.name, "lost+found"))
            FAILF("rmdir of empty %s: %d\n", e.name, rc);
    } else if (op < 75) { /* hard link */
        if (!pick_entry(w, s, S_IFREG, 0, &dir, &e))
            return;
        uint64_t nd = pick_dir(w, s);
        uint32_t before = 0;
        if (mfs_store_getattr(s, e.ino, &a) == 0)
            before = a.nlink;
        rc = mfs_store_link(s, e.ino, nd, randops_file(&w->ro),
                            &a);
        check_errno(w, "link", rc);
        if (rc == 0 && a.nlink != before + 1)
            FAILF("link: nlink %u after, %u before\n", a.nlink, before);
    } else if (op < 83) { /* xattr */
        if (!pick_entry(w, s, 0, 0, &dir, &e))
            return;
        randops_xattr x;
        randops_pick_xattr(&w->ro, &x);
        if (x.remove) {
            rc = mfs_store_removexattr(s, e.ino, x.name);
            check_errno(w, "removexattr", rc);
        } else {
            rc = mfs_store_setxattr(s, e.ino, x.name, x.val, x.len, x.flags);
            check_errno(w, "setxattr", rc);
            if (rc == 0) {
                char got[32];
                if (mfs_store_getxattr(s, e.ino, x.name, got, sizeof(got)) !=
                        (ssize_t)x.len ||
                    memcmp(got, x.val, x.len))
                    FAILF("getxattr after setxattr differs\n");
            }
        }
    } else if (op < 88) { /* chmod / chown / utimens */
        if (!pick_entry(w, s, 0, 0, &dir, &e))
            return;
        mfs_setattr sa;
        randops_pick_setattr(&w->ro, &sa);
        rc = mfs_store_setattr(s, e.ino, &sa, &a);
        check_errno(w, "setattr", rc);
        if (rc == 0 && (sa.mask & MFS_SET_MODE) && (a.mode & 07777) != sa.mode)
            FAILF("chmod not reflected\n");
    } else if (op < 90) { /* symlink */
        dir = pick_dir(w, s);
        rc = mfs_store_symlink(s, dir, randops_file(&w->ro),
                               "../a", 0, 0, &a);
        check_errno(w, "symlink", rc);
    } else { /* publish pending writes */
        publish_some(w, ri, 0);
    }
}

/* ---- final checks ------------------------------------------------------- */

static char *dump(world *w, int ri)
{
    int rc = 0;
    char *d = mfs_test_dump(w->r[ri].s, &rc);
    if (!d)
        FAILF("dump of replica %d: %d\n", ri, rc);
    return d;
}

typedef struct seen_obj {
    uint64_t ino;
    uint32_t mode;
    uint32_t names; /* entries found */
    uint32_t subdirs;
    vkey k;
    uint64_t hash;
    int copy;
} seen_obj;

typedef struct tree {
    seen_obj *o;
    size_t n, cap;
    size_t entries, copies; /* copies: names with ".conflict-" */
    size_t copy_objs;       /* regular objects first seen under such a name */
    uint64_t files, dirs, links, others, bytes;
} tree;

static seen_obj *tree_find(tree *t, uint64_t ino)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->o[i].ino == ino)
            return &t->o[i];
    return NULL;
}

static void walk(world *w, mfs_store *s, uint64_t dir, tree *t, int depth)
{
    if (depth > 64)
        FAILF("tree deeper than 64: a cycle?\n");
    ents *l = malloc(sizeof(*l));
    ls(w, s, dir, l);
    seen_obj *d = tree_find(t, dir);
    for (size_t i = 0; i < l->n; i++) {
        ent *e = &l->v[i];
        t->entries++;
        mfs_attr a;
        int rc = mfs_store_lookup(s, dir, e->name, &a);
        if (rc || a.ino != e->ino)
            FAILF("lookup of listed %s: %d ino %llu vs %llu\n", e->name, rc,
                  (unsigned long long)a.ino, (unsigned long long)e->ino);
        if ((a.mode & S_IFMT) != (e->mode & S_IFMT))
            FAILF("readdir type of %s differs from lookup\n", e->name);
        t->copies += (size_t)is_copy(e->name);
        seen_obj *o = tree_find(t, e->ino);
        if (o) {
            if (S_ISDIR(a.mode))
                FAILF("directory %s (ino %llu) reached twice: cycle or "
                      "duplicate\n",
                      e->name, (unsigned long long)e->ino);
            o->names++;
            continue;
        }
        seen_obj no = {e->ino, a.mode,          1, 0, {{0, 0}, {0, 0}},
                       0,      is_copy(e->name)};
        t->copy_objs += (size_t)(no.copy && S_ISREG(a.mode));
        if (S_ISREG(a.mode)) {
            mfs_file_info fi;
            if (mfs_store_file_info(s, e->ino, &fi, NULL, 0))
                FAILF("file_info of visible %s\n", e->name);
            no.k = vkey_of(&fi);
            int ok;
            no.hash = content_hash(w, s, e->ino, &ok);
            if (!ok)
                FAILF("read of visible %s\n", e->name);
            if (fi.dirty) {
                int was_nameless = 0;
                for (size_t j = 0; j < w->nnameless; j++)
                    was_nameless |= id_eq(w->nameless[j].id, fi.id) &&
                                    w->r[w->nameless[j].rep].s == s;
                FAILF("%s still dirty after the final publish_all%s\n", e->name,
                      was_nameless ? " (it lost its name once)" : "");
            }
        }
        PUSH(t->o, t->n, t->cap, no);
        d = tree_find(t, dir);
        if (S_ISDIR(a.mode)) {
            d->subdirs++;
            uint64_t p;
            rc = mfs_store_parent(s, e->ino, &p);
            if (rc || p != dir)
                FAILF("parent of %s is %llu, listed in %llu\n", e->name,
                      (unsigned long long)p, (unsigned long long)dir);
            walk(w, s, e->ino, t, depth + 1);
        }
    }
    free(l);
}

static void check_tree(world *w, int ri, tree *t)
{
    mfs_store *s = w->r[ri].s;
    mfs_attr ra;
    assert_int_equal(mfs_store_getattr(s, MFS_ROOT_INO, &ra), 0);
    seen_obj root = {MFS_ROOT_INO, ra.mode, 1, 0, {{0, 0}, {0, 0}}, 0, 0};
    PUSH(t->o, t->n, t->cap, root);
    walk(w, s, MFS_ROOT_INO, t, 0);
    uint64_t files = 0, dirs = 0, links = 0, others = 0, bytes = 0;
    for (size_t i = 0; i < t->n; i++) {
        seen_obj *o = &t->o[i];
        mfs_attr a;
        if (mfs_store_getattr(s, o->ino, &a))
            FAILF("getattr of visible ino\n");
        if (S_ISDIR(o->mode)) {
            dirs++;
            if (a.nlink != 2 + o->subdirs)
                FAILF("replica %d: dir ino %llu nlink %u, has %u subdirs\n", ri,
                      (unsigned long long)o->ino, a.nlink, o->subdirs);
        } else {
            if (!o->copy && a.nlink != o->names)
                FAILF("replica %d: ino %llu nlink %u but %u names\n", ri,
                      (unsigned long long)o->ino, a.nlink, o->names);
            if (S_ISREG(o->mode)) {
                files++;
                bytes += a.size;
            } else if (S_ISLNK(o->mode)) {
                links++;
            } else {
                others++;
            }
        }
    }
    t->files = files;
    t->dirs = dirs;
    t->links = links;
    t->others = others;
    t->bytes = bytes;
}

static void count_path(void *arg, const char *path)
{
    (void)path;
    (*(uint64_t *)arg)++;
}

static void check_stats(world *w, int ri, tree *t)
{
    mfs_store *s = w->r[ri].s;
    uint64_t files = t->files, dirs = t->dirs, links = t->links,
             others = t->others, bytes = t->bytes;
    /* What stats count (learned from the store, consistent with its
     * dump): dirs without the root, files = regular inodes with a name
     * (copies not counted), conflicts = copies and renamed same-name
     * entries but not copies that became files of their own, which keep
     * their ".conflict-" name. A copy is not told apart from an entry
     * black-box, hence ranges for files, bytes and conflicts. */
    mfs_store_stats st;
    assert_int_equal(mfs_store_stats_get(s, &st), 0);
    /* the counts the store keeps equal a scan of it */
    char why[512];
    if (mfs_test_census_check(s, why, sizeof(why)))
        FAILF("replica %d: %s\n", ri, why);
    /* and `meshfs stat` lists every conflict name it counts */
    uint64_t listed = 0;
    int nl = mfs_store_conflicts(s, count_path, &listed, 1u << 30);
    if (nl < 0 || (uint64_t)nl != listed || listed != st.conflicts)
        FAILF("replica %d: %llu conflict names counted, %d listed\n", ri,
              (unsigned long long)st.conflicts, nl);
    if (st.files > files || st.files + t->copy_objs < files ||
        st.symlinks != links || st.others != others || st.dirs != dirs - 1 ||
        st.conflicts > t->copies || st.bytes > bytes || st.dirty_files)
        FAILF("replica %d: stats files %llu dirs %llu symlinks %llu others "
              "%llu conflicts %llu bytes %llu dirty %llu; the walk found "
              "%llu regular objects (%zu named *.conflict-*), %llu dirs with "
              "the root, %llu symlinks, %llu others, %zu *.conflict-* names, "
              "%llu bytes in regular objects\n",
              ri, (unsigned long long)st.files, (unsigned long long)st.dirs,
              (unsigned long long)st.symlinks, (unsigned long long)st.others,
              (unsigned long long)st.conflicts, (unsigned long long)st.bytes,
              (unsigned long long)st.dirty_files, (unsigned long long)files,
              t->copy_objs, (unsigned long long)dirs, (unsigned long long)links,
              (unsigned long long)others, t->copies, (unsigned long long)bytes);
}

static void check_versions(world *w, tree *t)
{
    /* superseded: every ancestor of a recorded version */
    for (size_t i = 0; i < w->nv; i++) {
        vkey p = w->v[i].parent;
        for (int guard = 0; guard < 100000; guard++) {
            size_t j;
            for (j = 0; j < w->nv; j++)
                if (vkey_eq(w->v[j].k, p))
                    break;
            if (j == w->nv || w->v[j].excused == 1)
                break;
            w->v[j].excused = 1;
            p = w->v[j].parent;
        }
    }
    /* deleted by a replica that showed it (or a descendant): by (id,
     * stamp), or by its bytes (a conflict copy that became a file of its
     * own has a new id; removing it removes those bytes) */
    size_t nd0 = w->ndelhash;
    for (size_t d = 0; d < nd0; d++)
        for (size_t j = 0; j < w->nv; j++)
            if (w->v[j].hash == w->delhash[d] && !w->v[j].excused)
                PUSH(w->del, w->ndel, w->capdel, w->v[j].k);
    for (size_t d = 0; d < w->ndel; d++) {
        vkey p = w->del[d];
        for (int guard = 0; guard < 100000; guard++) {
            size_t j;
            for (j = 0; j < w->nv; j++)
                if (vkey_eq(w->v[j].k, p))
                    break;
            if (j == w->nv || w->v[j].excused == 2)
                break;
            w->v[j].excused = 2;
            p = w->v[j].parent;
        }
    }
    size_t lost = 0, sup = 0, del = 0, bykey = 0, bybytes = 0;
    for (size_t i = 0; i < w->nv; i++) {
        version *v = &w->v[i];
        sup += v->excused == 1;
        del += v->excused == 2;
        if (v->excused)
            continue;
        for (size_t j = 0; j < t->n; j++)
            if (S_ISREG(t->o[j].mode) && vkey_eq(t->o[j].k, v->k)) {
                bykey++;
                break;
            }
        seen_obj *hit = NULL;
        for (size_t j = 0; j < t->n; j++)
            if (S_ISREG(t->o[j].mode) && vkey_eq(t->o[j].k, v->k))
                hit = &t->o[j];
        /* A conflict copy turned into a file of its own (its file's last
         * name was deleted, or the copy was written) is a new inode with
         * the same bytes: accept the bytes anywhere in the tree. */
        for (size_t j = 0; j < t->n && !hit; j++)
            if (S_ISREG(t->o[j].mode) && t->o[j].hash == v->hash)
                hit = &t->o[j];
        if (!hit) {
            print_error("seed %llu: version %llx.%llu@%llx.%llx published by "
                        "replica %d at step %d is neither visible, superseded "
                        "nor deleted by a replica that had it\n",
                        (unsigned long long)g_seed,
                        (unsigned long long)v->k.id.node,
                        (unsigned long long)v->k.id.seq,
                        (unsigned long long)v->k.st.hlc,
                        (unsigned long long)v->k.st.node, v->rep, v->step);
            for (size_t j = 0; j < t->n; j++)
                if (S_ISREG(t->o[j].mode) && id_eq(t->o[j].k.id, v->k.id)) {
                    int rec = 0;
                    for (size_t q = 0; q < w->nv && !rec; q++)
                        rec = vkey_eq(w->v[q].k, t->o[j].k);
                    print_error("  visible object of that file: version "
                                "%llx.%llx%s%s\n",
                                (unsigned long long)t->o[j].k.st.hlc,
                                (unsigned long long)t->o[j].k.st.node,
                                t->o[j].hash == v->hash ? " (same bytes!)" : "",
                                rec ? ""
                                    : " (not published by a tracked call)");
                }
            for (size_t j = 0; j < w->nv; j++)
                if (id_eq(w->v[j].k.id, v->k.id))
                    print_error("  published: %llx.%llx parent %llx.%llx by "
                                "replica %d step %d%s\n",
                                (unsigned long long)w->v[j].k.st.hlc,
                                (unsigned long long)w->v[j].k.st.node,
                                (unsigned long long)w->v[j].parent.st.hlc,
                                (unsigned long long)w->v[j].parent.st.node,
                                w->v[j].rep, w->v[j].step,
                                w->v[j].excused ? " (excused)" : "");
            for (size_t j = 0; j < w->ndelrep; j++)
                if (id_eq(w->del[j].id, v->k.id))
                    print_error("  a name removed by replica %d at step %d "
                                "showing %llx.%llx there\n",
                                w->delrep[j], w->delstep[j],
                                (unsigned long long)w->del[j].st.hlc,
                                (unsigned long long)w->del[j].st.node);
            lost++;
        } else if (hit->hash != v->hash) {
            print_error("seed %llu: version %llx@%llx shows other bytes than "
                        "were published at step %d\n",
                        (unsigned long long)g_seed,
                        (unsigned long long)v->k.st.hlc,
                        (unsigned long long)v->k.st.node, v->step);
            lost++;
        }
    }
    /* files created and never removed by anyone */
    for (size_t i = 0; i < w->ncreated; i++) {
        mfs_id id = w->created[i];
        int removed = 0, visible = 0;
        for (size_t j = 0; j < w->nremoved && !removed; j++)
            removed = id_eq(w->removed[j], id);
        if (removed)
            continue;
        for (size_t j = 0; j < t->n && !visible; j++)
            visible = S_ISREG(t->o[j].mode) && id_eq(t->o[j].k.id, id);
        if (!visible) {
            print_error("seed %llu: file %llx.%llu was never removed but is "
                        "not visible\n",
                        (unsigned long long)g_seed, (unsigned long long)id.node,
                        (unsigned long long)id.seq);
            lost++;
        }
    }
    bybytes = w->nv - sup - del - bykey - lost;
    if (g_verbose || getenv("MESHFS_ORACLE"))
        print_message("seed %llu oracle: %zu versions: %zu superseded, %zu "
                      "deleted by a replica that had them, %zu shown under "
                      "their (file, stamp), %zu found by their bytes, %zu "
                      "lost\n",
                      (unsigned long long)g_seed, w->nv, sup, del, bykey,
                      bybytes, lost);
    if (lost)
        FAILF("%zu versions/files lost (%zu versions of its own a replica "
              "showed were not made by a publish the test tracked)\n",
              lost, w->untracked);
}

static void save_line(void *arg, const char *line)
{
    fprintf(arg, "%s\n", line);
}

/* On failure: every replica's dump in $TMPDIR for the report. */
static void save_dumps(world *w)
{
    static int saving;
    if (saving)
        return;
    saving = 1;
    const char *tmp = getenv("TMPDIR");
    for (int i = 0; i < w->nrep; i++) {
        char path[512];
        snprintf(path, sizeof(path), "%s/meshfs-converge-%llu-rep%d.dump",
                 tmp && *tmp ? tmp : "/tmp", (unsigned long long)g_seed, i);
        FILE *f = fopen(path, "w");
        if (!f)
            continue;
        mfs_store_dump(w->r[i].s, save_line, f);
        fclose(f);
        if (i == 0)
            print_error("  dumps saved as %s (rep0..rep%d)\n", path,
                        w->nrep - 1);
    }
    saving = 0;
}

/* Prints the first differing lines and saves both dumps for a diff. */
static void report_dump_diff(uint64_t seed, int i, const char *d0,
                             const char *di)
{
    const char *a = d0, *b = di;
    while (*a && *a == *b)
        a++, b++;
    while (a > d0 && a[-1] != '\n')
        a--, b--;
    const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
    print_error("seed %llu: dump of replica %d differs from replica 0; first "
                "difference:\n  0: %.*s\n  %d: %.*s\n",
                (unsigned long long)seed, i,
                ea ? (int)(ea - a) : (int)strlen(a), a, i,
                eb ? (int)(eb - b) : (int)strlen(b), b);
    const char *tmp = getenv("TMPDIR");
    char path[512];
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof(path), "%s/meshfs-converge-%llu-rep%d.dump",
                 tmp && *tmp ? tmp : "/tmp", (unsigned long long)seed,
                 k ? i : 0);
        FILE *f = fopen(path, "w");
        if (f) {
            fputs(k ? di : d0, f);
            fclose(f);
            print_error("  saved %s\n", path);
        }
    }
}

/* ---- one seed ------------------------------------------------------------ */

static world *g_world; /* freed by the teardown on every path */

static void world_free(world *w)
{
    for (int i = 0; i < w->nrep; i++)
        if (w->r[i].s)
            rep_close(&w->r[i]);
    free(w->v);
    free(w->del);
    free(w->delrep);
    free(w->delstep);
    free(w->delhash);
    free(w->created);
    free(w->removed);
    free(w->buf);
    free(w);
}

static void run_seed(uint64_t seed)
{
    g_seed = seed;
    world *w = calloc(1, sizeof(*w));
    g_world = w;
    mfs_rng_seed(&w->rng, seed * 0x9e3779b97f4a7c15ull + 1);
    randops ro = {&w->rng, file_pool, 6, dir_pool, 3, 128, 1, ro_fail, w};
    w->ro = ro;
    w->buf = malloc(BATCH_CAP);
    w->nrep = 3 + (int)mfs_rng_below(&w->rng, 3);
    for (int i = 0; i < w->nrep; i++)
        rep_open(w, &w->r[i], i == 0,
                 0x1000 * (uint64_t)(i + 1) + seed % 0x1000,
                 mfs_rng_below(&w->rng, 30000));
    for (int i = 1; i < w->nrep; i++) { /* join: replica 0's initial ops */
        ssize_t n = batch_for(w, 0, i, BATCH_CAP);
        assert_true(n > 0);
        mfs_apply_result res;
        apply_ok(w, i, w->buf, (size_t)n, &res);
    }
    int steps = (int)g_steps * w->nrep + (int)mfs_rng_below(&w->rng, 60);
    for (w->step = 0; w->step < steps; w->step++) {
        for (int i = 0; i < w->nrep; i++)
            w->r[i].clk.ms += mfs_rng_below(&w->rng, 40);
        int ri = (int)mfs_rng_below(&w->rng, (uint64_t)w->nrep);
        if (mfs_rng_below(&w->rng, 100) < 22) {
            int to = (int)mfs_rng_below(&w->rng, (uint64_t)w->nrep - 1);
            if (to >= ri)
                to++;
            partial_exchange(w, ri, to);
        } else if (mfs_rng_below(&w->rng, 100) < 6) {
            settle_step(w, ri);
        } else {
            local_op(w, ri);
        }
    }
    w->step = -1;
    /* The tracked files first (recorded for the oracle), then whatever
     * else is dirty, as the daemon's unmount does (files that got a name
     * back after losing it; their versions are not recorded). */
    for (int i = 0; i < w->nrep; i++)
        publish_some(w, i, 1);
    for (size_t j = 0; j < w->nnameless; j++) /* the kernel's last forget */
        mfs_store_forget(w->r[w->nameless[j].rep].s, w->nameless[j].ino);
    for (int i = 0; i < w->nrep; i++) {
        int rc = mfs_store_publish_all(w->r[i].s, 0);
        if (rc)
            FAILF("publish_all on replica %d: %d\n", i, rc);
        while (w->r[i].nlimbo) {
            size_t before = w->r[i].nlimbo;
            adopt_limbo(w, i, w->r[i].limbo[0].ino);
            if (w->r[i].nlimbo == before) /* still dirty: forgotten, no name */
                w->r[i].limbo[0] = w->r[i].limbo[--w->r[i].nlimbo];
        }
    }
    quiesce(w);
    char *d0 = dump(w, 0);
    for (int i = 1; i < w->nrep; i++) {
        char *di = dump(w, i);
        if (strcmp(d0, di)) {
            report_dump_diff(seed, i, d0, di);
            fail();
        }
        free(di);
    }
    if (g_verbose)
        print_message("seed %llu: %d replicas, %d steps, %zu versions, %zu "
                      "remote ops applied\n%s",
                      (unsigned long long)seed, w->nrep, steps, w->nv,
                      w->nops_applied, d0);
    free(d0);
    for (int i = 0; i < w->nrep; i++) {
        tree t = {0};
        check_tree(w, i, &t);
        if (i == 0)
            check_versions(w, &t);
        check_stats(w, i, &t);
        free(t.o);
    }
    world_free(w);
    g_world = NULL;
}

static int teardown(void **state)
{
    (void)state;
    if (g_world)
        world_free(g_world);
    g_world = NULL;
    return 0;
}

static void test_seed(void **state)
{
    run_seed(*(uint64_t *)*state);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        g_first = strtoull(argv[1], NULL, 0);
    if (argc > 2)
        g_count = strtoull(argv[2], NULL, 0);
    if (argc > 3)
        g_steps = strtoull(argv[3], NULL, 0);
    if (getenv("MESHFS_STEPS"))
        g_steps = strtoull(getenv("MESHFS_STEPS"), NULL, 0);
    g_trash0 = getenv("MESHFS_TRASH0") != NULL;
    const char *e = getenv("MESHFS_SEED");
    if (e && *e) {
        g_first = mfs_test_seed(0);
        g_count = 1;
        g_verbose = getenv("MESHFS_VERBOSE") != NULL;
    }
    int rc = mfs_test_run_seeds("test_store_converge", NULL, 0, g_first,
                                g_count, test_seed, teardown);
    /* collection ran: ops folded out of the logs and moves forgotten
     * while the replicas went on diverging and merging */
    printf("collection folded %llu ops and forgot %llu settled moves\n",
           (unsigned long long)g_folded, (unsigned long long)g_moves);
    if (g_count >= 20 && (!g_folded || !g_moves)) {
        printf("collection never folded an op or forgot a move: the runs "
               "did not test it\n");
        rc = rc ? rc : 1;
    }
    if (g_trash0) {
        printf("with no trash it dropped %llu versions and the content of "
               "%llu deleted files\n",
               (unsigned long long)g_versions, (unsigned long long)g_inodes);
        if (g_count >= 20 && (!g_versions || !g_inodes)) {
            printf("collection never dropped a version or a deleted file's "
                   "content: the runs did not test it\n");
            rc = rc ? rc : 1;
        }
    }
    return rc;
}
