/*
 * test_sync_repl.c - the replication engine (sync/repl.c) between two real
 * stores, joined by an in-memory message queue instead of the transport:
 * pushes and chunk fetches carry new files across; a node that missed
 * everything catches up by pulling; status says in sync only when it is;
 * and malformed messages (every captured message truncated at every
 * length and bit-flipped, random bytes, a chunk whose bytes do not match
 * its hash) are dropped without changing either store.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "codec.h"
#include "core.h"
#include "repl.h"
#include "store.h"
#include "testutil.h"

#define NODE_A 0xa1u
#define NODE_B 0xb2u
#define MAXQ 4096

typedef struct qmsg {
    uint64_t from, to;
    int channel;
    uint8_t mtype;
    uint8_t *data;
    size_t len;
} qmsg;

typedef struct net {
    qmsg q[MAXQ];
    size_t n;
    int drop_to_b; /* B is cut off */
    int drop_chunks_to_b; /* B gets no CHUNK message */
    /* a copy of every message, for the malformed-input test */
    qmsg seen[64];
    size_t nseen;
} net;

typedef struct node {
    char *dir;
    mfs_store *s;
    mfs_repl *r;
    uint64_t id;
    net *net;
} node;

static net g_net;
static node g_a, g_b;
static uint64_t g_now = 1000000;
static uint32_t g_window; /* chunk_window of the next node_open (0: default) */
static int g_store_chunks; /* store_chunks of the next node_open */
static uint32_t g_apply;   /* apply_bytes of the next node_open */

static size_t g_wants_from_b; /* WANT messages B sent */
static size_t g_ops_from_b;   /* OPS messages B sent */

static int q_send(void *arg, uint64_t to, int channel, uint8_t mtype,
                  const void *data, size_t len)
{
    node *from = arg;
    net *n = from->net;
    if (from->id == NODE_B && mtype == MFS_MT_WANT)
        g_wants_from_b++;
    if (from->id == NODE_B && mtype == MFS_MT_OPS)
        g_ops_from_b++;
    if (to == NODE_B && n->drop_to_b)
        return -EHOSTDOWN;
    if (to == NODE_B && n->drop_chunks_to_b && mtype == MFS_MT_CHUNK)
        return 0; /* (lost on the way) */
    if (n->n == MAXQ)
        return -ENOBUFS;
    qmsg *m = &n->q[n->n++];
    m->from = from->id;
    m->to = to;
    m->channel = channel;
    m->mtype = mtype;
    m->len = len;
    m->data = malloc(len ? len : 1);
    memcpy(m->data, data, len);
    int have = 0;
    for (size_t i = 0; i < n->nseen; i++)
        have |= n->seen[i].mtype == mtype;
    if (!have && n->nseen < 64) {
        qmsg *c = &n->seen[n->nseen++];
        *c = *m;
        c->data = malloc(len ? len : 1);
        memcpy(c->data, data, len);
    }
    return 0;
}

static void node_open(node *nd, uint64_t id, int new_mesh)
{
    memset(nd, 0, sizeof(*nd));
    nd->dir = mfs_test_mkdtemp("repl");
    nd->id = id;
    nd->net = &g_net;
    mfs_store_config cfg;
    mfs_store_config_default(&cfg);
    cfg.node_id = id;
    cfg.new_mesh = new_mesh;
    assert_int_equal(mfs_store_open(&nd->s, nd->dir, &cfg, MFS_STORE_CREATE),
                     0);
    mfs_repl_config rc;
    mfs_repl_config_default(&rc);
    rc.send = q_send;
    rc.arg = nd;
    if (g_window)
        rc.chunk_window = g_window;
    rc.store_chunks = g_store_chunks;
    rc.apply_bytes = g_apply;
    assert_int_equal(mfs_repl_new(nd->s, &rc, g_now, &nd->r), 0);
}

static void node_close(node *nd)
{
    mfs_repl_free(nd->r);
    mfs_store_close(nd->s);
    mfs_test_rmdir(nd->dir);
    memset(nd, 0, sizeof(*nd));
}

static node *by_id(uint64_t id)
{
    return id == NODE_A ? &g_a : &g_b;
}

/* Delivers queued messages and ticks both nodes until nothing moves. */
static void pump(void)
{
    for (int round = 0; round < 10000; round++) {
        g_now += 1000;
        mfs_repl_tick(g_a.r, g_now);
        mfs_repl_tick(g_b.r, g_now);
        if (g_net.n == 0) {
            /* let timers (coalescing, chunk rescans) run out */
            int idle = 1;
            for (int k = 0; k < 20 && idle; k++) {
                g_now += 5000;
                mfs_repl_tick(g_a.r, g_now);
                mfs_repl_tick(g_b.r, g_now);
                idle = g_net.n == 0;
            }
            if (idle)
                return;
        }
        size_t n = g_net.n;
        qmsg batch[MAXQ];
        memcpy(batch, g_net.q, n * sizeof(qmsg));
        g_net.n = 0;
        for (size_t i = 0; i < n; i++) {
            node *to = by_id(batch[i].to);
            mfs_repl_on_msg(to->r, g_now, batch[i].from, batch[i].mtype,
                            batch[i].data, batch[i].len);
            free(batch[i].data);
        }
    }
    fail_msg("replication did not settle");
}

static void meet(void)
{
    mfs_repl_on_peer(g_a.r, g_now, NODE_B, MFS_PEER_ALIVE, 1);
    mfs_repl_on_peer(g_b.r, g_now, NODE_A, MFS_PEER_ALIVE, 1);
    pump();
}

static char *dump(mfs_store *s)
{
    int rc = 0;
    char *d = mfs_test_dump(s, &rc);
    assert_int_equal(rc, 0);
    return d;
}

static void assert_same(void)
{
    char *a = dump(g_a.s), *b = dump(g_b.s);
    if (strcmp(a, b)) {
        print_error("A:\n%s\nB:\n%s\n", a, b);
        fail_msg("trees differ");
    }
    free(a);
    free(b);
}

static int in_sync(node *nd)
{
    mfs_repl_status st;
    mfs_repl_peer p[4];
    mfs_repl_status_get(nd->r, &st, p, 4);
    return st.in_sync;
}

static uint64_t make_file(node *nd, const char *name, size_t size, int seed)
{
    mfs_attr a;
    assert_int_equal(
        mfs_store_mknod(nd->s, MFS_ROOT_INO, name, S_IFREG | 0644, 0, 0, 0, &a),
        0);
    uint8_t *buf = malloc(size ? size : 1);
    for (size_t i = 0; i < size; i++)
        buf[i] = (uint8_t)(i * 7 + (size_t)seed + 1);
    assert_int_equal(mfs_store_write(nd->s, a.ino, 0, buf, size),
                     (ssize_t)size);
    assert_int_equal(mfs_store_publish(nd->s, a.ino), 0);
    free(buf);
    mfs_repl_changed(nd->r);
    return a.ino;
}

static int setup(void **state)
{
    (void)state;
    memset(&g_net, 0, sizeof(g_net));
    node_open(&g_a, NODE_A, 1);
    node_open(&g_b, NODE_B, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (size_t i = 0; i < g_net.n; i++)
        free(g_net.q[i].data);
    for (size_t i = 0; i < g_net.nseen; i++)
        free(g_net.seen[i].data);
    g_net.n = g_net.nseen = 0;
    node_close(&g_a);
    node_close(&g_b);
    return 0;
}

/* New files on A (small, multi-chunk, empty) reach B by push + fetch. */
static void test_push_and_fetch(void **state)
{
    (void)state;
    meet();
    assert_true(in_sync(&g_a));
    assert_true(in_sync(&g_b));
    make_file(&g_a, "small", 100, 1);
    make_file(&g_a, "big", 3 * MFS_CHUNK_SIZE + 17, 2);
    make_file(&g_a, "empty", 0, 3);
    assert_false(in_sync(&g_a)); /* B has not reported them yet */
    pump();
    assert_same();
    assert_true(in_sync(&g_a));
    assert_true(in_sync(&g_b));
    mfs_repl_status st;
    mfs_repl_peer p[2];
    mfs_repl_status_get(g_a.r, &st, p, 2);
    assert_true(st.pushes > 0);
    assert_int_equal(st.bad_msgs, 0);
}

/* A small file's content travels right behind the push of its op: B
 * asks for nothing (it sent a WANT for it, a round trip later, before);
 * a large file's chunks are still asked for. */
static void test_small_content_pushed(void **state)
{
    (void)state;
    meet();
    g_wants_from_b = 0;
    make_file(&g_a, "small", 100, 1);
    make_file(&g_a, "page", 4096, 2);
    pump();
    assert_same();
    assert_true(in_sync(&g_b));
    assert_int_equal(g_wants_from_b, 0);
    make_file(&g_a, "big", 2 * MFS_CHUNK_SIZE, 3);
    pump();
    assert_same();
    assert_true(g_wants_from_b > 0);
    mfs_repl_status st;
    mfs_repl_peer p[2];
    mfs_repl_status_get(g_b.r, &st, p, 2);
    assert_int_equal(st.bad_msgs, 0);
}

/* A and B meet, then B is cut off (A's datagrams to it dropped, A sees it
 * dead) while A makes n files f000..: of i * 37 % vary bytes, or 100 with
 * vary 0. */
static void write_while_cut_off(int n, size_t vary)
{
    meet();
    g_net.drop_to_b = 1;
    mfs_repl_on_peer(g_a.r, g_now, NODE_B, MFS_PEER_DEAD, 1);
    for (int i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "f%03d", i);
        make_file(&g_a, name, vary ? (size_t)i * 37 % vary : 100, i);
    }
    pump();
}

/* B was cut off while A changed a lot: once it is back it pulls. */
static void test_catch_up_by_pull(void **state)
{
    (void)state;
    write_while_cut_off(300, 5000);
    char *b = dump(g_b.s);
    assert_null(strstr(b, "f299"));
    free(b);
    g_net.drop_to_b = 0;
    mfs_repl_on_peer(g_a.r, g_now, NODE_B, MFS_PEER_ALIVE, 1);
    pump();
    assert_same();
    assert_true(in_sync(&g_b));
    mfs_repl_status st;
    mfs_repl_peer p[2];
    mfs_repl_status_get(g_b.r, &st, p, 2);
    assert_true(st.pulls > 0);
    assert_int_equal(st.ops_to_go, 0);
}

/* Both edit while apart: after meeting, same tree, conflict copy kept. */
static void test_concurrent_edits(void **state)
{
    (void)state;
    meet();
    uint64_t ino = make_file(&g_a, "doc.txt", 10, 1);
    pump();
    g_net.drop_to_b = 1;
    mfs_repl_on_peer(g_a.r, g_now, NODE_B, MFS_PEER_DEAD, 1);
    mfs_repl_on_peer(g_b.r, g_now, NODE_A, MFS_PEER_DEAD, 1);
    assert_int_equal(mfs_store_write(g_a.s, ino, 0, "AAAA", 4), 4);
    assert_int_equal(mfs_store_publish(g_a.s, ino), 0);
    mfs_repl_changed(g_a.r);
    mfs_attr attr;
    uint64_t bino = 0;
    /* B finds the file by name */
    assert_int_equal(mfs_store_lookup(g_b.s, MFS_ROOT_INO, "doc.txt", &attr),
                     0);
    bino = attr.ino;
    assert_int_equal(mfs_store_write(g_b.s, bino, 0, "BBBB", 4), 4);
    assert_int_equal(mfs_store_publish(g_b.s, bino), 0);
    mfs_repl_changed(g_b.r);
    pump();
    g_net.drop_to_b = 0;
    meet();
    assert_same();
    char *d = dump(g_a.s);
    assert_non_null(strstr(d, ".conflict-"));
    free(d);
    assert_true(in_sync(&g_a));
    assert_true(in_sync(&g_b));
}

static void feed(node *nd, uint8_t mtype, const uint8_t *p, size_t len)
{
    mfs_repl_on_msg(nd->r, g_now, nd == &g_a ? NODE_B : NODE_A, mtype, p, len);
}

/* ---- write concern: an await on A and its outcome ---- */
static int g_acked = 1; /* the last await's outcome (1: not yet) */
static void acked(void *arg, int err)
{
    (void)arg;
    g_acked = err;
}

static uint64_t own_seq(node *nd)
{
    mfs_vv v;
    assert_int_equal(mfs_store_vv(nd->s, &v), 0);
    uint64_t seq = mfs_vv_get(&v, nd->id);
    mfs_vv_free(&v);
    return seq;
}

static uint64_t own_hlc(node *nd, uint64_t seq)
{
    uint64_t hlc;
    assert_int_equal(mfs_store_op_hlc(nd->s, nd->id, seq, &hlc), 0);
    return hlc;
}

/* A waits for n members to hold its ops so far. */
static void await_on_a(unsigned n, uint32_t timeout_ms, int wait)
{
    g_acked = 1;
    uint64_t seq = own_seq(&g_a);
    assert_int_equal(mfs_repl_await_held(g_a.r, g_now, seq, own_hlc(&g_a, seq),
                                         n, timeout_ms, wait, acked, NULL),
                     0);
}

static void step_holding(qmsg *held, size_t *nheld, uint8_t hold);

/* Runs the network until the await is decided or ms pass. */
static void pump_until_acked(uint32_t ms)
{
    for (uint32_t t = 0; t < ms && g_acked == 1; t++)
        step_holding(NULL, NULL, 0);
}

/* An ack covers the chunks: a file whose chunks B cannot get is not
 * held, whatever B applied of its ops; once they arrive it is. */
static void test_acks_need_chunks(void **state)
{
    (void)state;
    meet();
    g_net.drop_chunks_to_b = 1;
    make_file(&g_a, "big", 3 * MFS_CHUNK_SIZE + 17, 2);
    await_on_a(1, 3000, 0);
    pump_until_acked(5000);
    assert_int_equal(g_acked, -ETIMEDOUT);
    mfs_repl_status st;
    mfs_repl_peer p[2];
    mfs_repl_status_get(g_b.r, &st, p, 2);
    assert_true(st.chunks_to_go > 0); /* B holds the op, not the chunks */
    g_net.drop_chunks_to_b = 0;
    await_on_a(1, 30000, 0);
    pump_until_acked(30000);
    assert_int_equal(g_acked, 0);
    assert_same();
}

/* Met at once when already held; fewer members alive than asked for
 * fails at once, unless told to wait (then it times out); a member cut
 * off times out, and after it comes back the next wait is met. */
static void test_acks_members(void **state)
{
    (void)state;
    meet();
    make_file(&g_a, "a", 100, 1);
    await_on_a(1, 2000, 0);
    pump_until_acked(2000);
    assert_int_equal(g_acked, 0);
    await_on_a(1, 2000, 0); /* nothing new: met at once, in the call */
    assert_int_equal(g_acked, 0);
    make_file(&g_a, "b", 100, 2);
    await_on_a(2, 2000, 0); /* one other member */
    assert_int_equal(g_acked, -EHOSTUNREACH);
    await_on_a(2, 2000, 1);
    assert_int_equal(g_acked, 1);
    pump_until_acked(3000);
    assert_int_equal(g_acked, -ETIMEDOUT);
    g_net.drop_to_b = 1; /* B cut off, still thought alive */
    make_file(&g_a, "c", 100, 3);
    await_on_a(1, 2000, 0);
    pump_until_acked(3000);
    assert_int_equal(g_acked, -ETIMEDOUT);
    mfs_repl_on_peer(g_a.r, g_now, NODE_B, MFS_PEER_DEAD, 1);
    await_on_a(1, 2000, 0); /* and once known dead: at once */
    assert_int_equal(g_acked, -EHOSTUNREACH);
    g_net.drop_to_b = 0;
    mfs_repl_on_peer(g_a.r, g_now, NODE_B, MFS_PEER_ALIVE, 1);
    await_on_a(1, 5000, 0);
    pump_until_acked(5000);
    assert_int_equal(g_acked, 0);
    assert_same();
    /* an unmount ends what still waits */
    make_file(&g_a, "d", 100, 4);
    g_net.drop_to_b = 1;
    await_on_a(1, 5000, 0);
    mfs_repl_await_cancel(g_a.r, -ESHUTDOWN);
    assert_int_equal(g_acked, -ESHUTDOWN);
}

/* The OPS messages to B in the queue: how many, and the raw length of
 * the last one's batch. */
static size_t ops_to_b(uint32_t *raw)
{
    size_t n = 0;
    for (size_t i = 0; i < g_net.n; i++)
        if (g_net.q[i].to == NODE_B && g_net.q[i].mtype == MFS_MT_OPS) {
            n++;
            *raw = mfs_be32_get(g_net.q[i].data + 13); /* (req, flags, total) */
        }
    return n;
}

/* A's ops (from, own seq] as mfs_store_ops_since gives them, into buf. */
static size_t own_batch(uint64_t from, uint8_t *buf, size_t cap)
{
    mfs_vv v = {0};
    mfs_vv_entry e = {.node = NODE_A, .seq = from};
    mfs_vv_entry all[2] = {e, {.node = NODE_B, .seq = UINT64_MAX}};
    v.e = all;
    v.n = 2;
    ssize_t n = mfs_store_ops_since(g_a.s, &v, buf, cap);
    assert_true(n > 0);
    return (size_t)n;
}

/* The write concern's early push (mfs_repl_logged): ops handed over with
 * their intent-log record leave at the engine's next turn to a member
 * whose pushed vector reaches their start, with the ask for HELD, and
 * only what a push did not send already; a batch beyond what the member
 * was sent waits for the commit's push. */
static void test_acks_early_push(void **state)
{
    (void)state;
    meet();
    mfs_repl_set_ask_pushes(g_a.r, 1);
    static uint8_t buf[1 << 20];
    uint64_t s0 = own_seq(&g_a);
    make_file(&g_a, "a", 100, 1);
    uint64_t s1 = own_seq(&g_a);
    size_t n = own_batch(s0, buf, sizeof buf);
    mfs_repl_logged(g_a.r, s0, s1, buf, n);
    assert_true(mfs_repl_logged_has(g_a.r, s1));
    assert_false(mfs_repl_logged_has(g_a.r, s1 + 1));
    g_now += 1000;
    mfs_repl_tick(g_a.r, g_now);
    uint32_t raw = 0;
    assert_int_equal(ops_to_b(&raw), 1); /* (not again by push_new) */
    assert_int_equal(raw, n);
    assert_int_equal(mfs_repl_early_pushes(g_a.r), 1);
    int ask = 0;
    for (size_t i = 0; i < g_net.n && g_net.q[i].mtype != MFS_MT_OPS; i++)
        ask |= g_net.q[i].mtype == MFS_MT_ASKHELD;
    assert_true(ask); /* ahead of the ops */
    pump();
    assert_same();
    /* "b" goes by the commit's push; a record of "b" and "c" then sends
     * only "c" */
    make_file(&g_a, "b", 100, 2);
    uint64_t s2 = own_seq(&g_a);
    g_now += 1000;
    mfs_repl_tick(g_a.r, g_now);
    pump();
    make_file(&g_a, "c", 100, 3);
    uint64_t s3 = own_seq(&g_a);
    n = own_batch(s1, buf, sizeof buf);
    mfs_repl_logged(g_a.r, s1, s3, buf, n);
    g_now += 1000;
    mfs_repl_tick(g_a.r, g_now);
    assert_int_equal(ops_to_b(&raw), 1);
    assert_int_equal(raw, n - (size_t)mfs_batch_skip(buf, n, NODE_A, s2));
    assert_int_equal(mfs_repl_early_pushes(g_a.r), 2);
    pump();
    assert_same();
    /* a batch beyond what B was sent (its start never pushed): not sent */
    make_file(&g_a, "d", 100, 4);
    uint64_t s4 = own_seq(&g_a);
    make_file(&g_a, "e", 100, 5);
    n = own_batch(s4, buf, sizeof buf);
    mfs_repl_logged(g_a.r, s4, own_seq(&g_a), buf, n);
    g_now += 1000;
    mfs_repl_tick(g_a.r, g_now); /* (push_new sends both) */
    assert_int_equal(mfs_repl_early_pushes(g_a.r), 2);
    pump();
    assert_same();
}

/* HELD messages come in any order and twice: only the newest counts,
 * and what a member holds never goes back. */
static void test_acks_reordered(void **state)
{
    (void)state;
    meet();
    make_file(&g_a, "a", 100, 1);
    uint64_t seq = own_seq(&g_a), hlc = own_hlc(&g_a, seq);
    uint8_t m[32]; /* message seq, origin, held, least wanted hlc */
    mfs_be64_put(m, 10);
    mfs_be64_put(m + 8, NODE_A);
    mfs_be64_put(m + 16, seq - 1);
    mfs_be64_put(m + 24, 0);
    feed(&g_a, MFS_MT_HELD, m, sizeof m);
    mfs_be64_put(m, 9); /* older, claims more: ignored */
    mfs_be64_put(m + 16, seq);
    feed(&g_a, MFS_MT_HELD, m, sizeof m);
    g_net.drop_to_b = 1; /* (no real answer) */
    await_on_a(1, 1000, 0);
    assert_int_equal(g_acked, 1);
    mfs_be64_put(m, 11); /* newer, claims less: held stays */
    mfs_be64_put(m + 16, 1);
    feed(&g_a, MFS_MT_HELD, m, sizeof m);
    assert_int_equal(g_acked, 1);
    mfs_be64_put(m, 12); /* of another origin's ops: not ours */
    mfs_be64_put(m + 8, NODE_B);
    mfs_be64_put(m + 16, seq);
    feed(&g_a, MFS_MT_HELD, m, sizeof m);
    assert_int_equal(g_acked, 1);
    mfs_be64_put(m, 13); /* all of it, but the version waits for a chunk */
    mfs_be64_put(m + 8, NODE_A);
    mfs_be64_put(m + 24, hlc);
    feed(&g_a, MFS_MT_HELD, m, sizeof m);
    assert_int_equal(g_acked, 1);
    mfs_be64_put(m, 14); /* and whole: met */
    mfs_be64_put(m + 24, 0);
    feed(&g_a, MFS_MT_HELD, m, sizeof m);
    assert_int_equal(g_acked, 0);
    feed(&g_a, MFS_MT_HELD, m, sizeof m); /* again: nothing more */
    mfs_repl_status st;
    mfs_repl_peer p[2];
    assert_int_equal(mfs_repl_status_get(g_a.r, &st, p, 2), 1);
    assert_int_equal(p[0].held, seq);
}

/* Every message type, cut at every length and with bits flipped, and
 * random bytes: nothing changes on the receiver, nothing crashes. */
static void test_malformed(void **state)
{
    (void)state;
    meet();
    make_file(&g_a, "x", 2 * MFS_CHUNK_SIZE, 5);
    await_on_a(1, 5000, 0); /* HELD and ASKHELD are among the samples */
    pump();
    assert_same();
    char *before = dump(g_b.s);
    char *before_a = dump(g_a.s);
    mfs_rng rng;
    mfs_rng_seed(&rng, mfs_test_seed(7));
    assert_true(g_net.nseen >= 5);
    for (size_t i = 0; i < g_net.nseen; i++) {
        const qmsg *m = &g_net.seen[i];
        node *to = by_id(m->to);
        uint8_t *buf = malloc(m->len + 16);
        for (size_t cut = 0; cut < m->len; cut += 1 + m->len / 200) {
            memcpy(buf, m->data, cut);
            feed(to, m->mtype, buf, cut);
        }
        for (int k = 0; k < 200; k++) {
            memcpy(buf, m->data, m->len);
            size_t bit = mfs_rng_below(&rng, m->len * 8);
            buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            feed(to, m->mtype, buf, m->len);
        }
        free(buf);
    }
    uint8_t junk[300];
    for (int k = 0; k < 2000; k++) {
        size_t len = mfs_rng_below(&rng, sizeof junk);
        for (size_t j = 0; j < len; j++)
            junk[j] = (uint8_t)mfs_rng_next(&rng);
        feed(&g_b, (uint8_t)(16 + mfs_rng_below(&rng, 12)), junk, len);
    }
    /* the answers the junk provoked go out; they change nothing either */
    pump();
    char *after = dump(g_b.s);
    char *after_a = dump(g_a.s);
    assert_string_equal(before, after);
    assert_string_equal(before_a, after_a);
    free(before);
    free(after);
    free(before_a);
    free(after_a);
    mfs_repl_status st;
    mfs_repl_peer p[2];
    mfs_repl_status_get(g_b.r, &st, p, 2);
    assert_true(st.bad_msgs > 0);
}

/* A chunk whose bytes do not hash to its name is refused; the version
 * waits until the real chunk arrives. */
static void test_forged_chunk(void **state)
{
    (void)state;
    meet();
    g_net.drop_to_b = 1; /* B learns the op only when it meets A again */
    mfs_repl_on_peer(g_a.r, g_now, NODE_B, MFS_PEER_DEAD, 1);
    make_file(&g_a, "f", 1000, 9);
    pump();
    /* hand B the ops but not the chunk: apply A's batch directly */
    mfs_vv none = {0};
    uint8_t *batch = malloc(1 << 20);
    ssize_t n = mfs_store_ops_since(g_a.s, &none, batch, 1 << 20);
    assert_true(n > 0);
    mfs_apply_result res;
    assert_int_equal(mfs_store_apply(g_b.s, batch, (size_t)n, &res), 0);
    free(batch);
    uint8_t want[MFS_HASH_LEN];
    assert_int_equal(mfs_store_chunks_wanted(g_b.s, want, 1), 1);
    uint8_t msg[MFS_HASH_LEN + 5 + 1000];
    memcpy(msg, want, MFS_HASH_LEN);
    msg[MFS_HASH_LEN] = 0;
    msg[MFS_HASH_LEN + 1] = 0;
    msg[MFS_HASH_LEN + 2] = 0;
    msg[MFS_HASH_LEN + 3] = 1000 >> 8;
    msg[MFS_HASH_LEN + 4] = 1000 & 0xff;
    memset(msg + MFS_HASH_LEN + 5, 0x55, 1000);
    feed(&g_b, MFS_MT_CHUNK, msg, sizeof msg);
    mfs_repl_tick(g_b.r, g_now += 1000); /* stored (refused) at the tick */
    assert_int_equal(mfs_store_chunks_wanted(g_b.s, want, 1), 1);
    mfs_repl_status st;
    mfs_repl_peer p[2];
    mfs_repl_status_get(g_b.r, &st, p, 2);
    assert_true(st.bad_msgs > 0);
    assert_false(st.in_sync);
    g_net.drop_to_b = 0;
    meet();
    assert_same();
    assert_true(in_sync(&g_b));
}

/* One round: both nodes tick, every message queued so far is delivered
 * (but OPS from A when held is given: those are kept aside there);
 * counts the CHUNK messages per channel. */
static size_t g_chunks_urgent, g_chunks_bulk;
/* One millisecond: both nodes tick, and what is queued is delivered,
 * except messages from A of type hold (OPS, or STATE), kept in held. */
static void step_holding(qmsg *held, size_t *nheld, uint8_t hold)
{
    g_now += 1000;
    mfs_repl_tick(g_a.r, g_now);
    mfs_repl_tick(g_b.r, g_now);
    size_t n = g_net.n;
    qmsg batch[MAXQ];
    memcpy(batch, g_net.q, n * sizeof(qmsg));
    g_net.n = 0;
    for (size_t i = 0; i < n; i++) {
        if (held && batch[i].from == NODE_A && batch[i].mtype == hold) {
            held[(*nheld)++] = batch[i];
            continue;
        }
        if (batch[i].mtype == MFS_MT_CHUNK) {
            if (batch[i].channel == MFS_SYNC_URGENT)
                g_chunks_urgent++;
            else
                g_chunks_bulk++;
        }
        mfs_repl_on_msg(by_id(batch[i].to)->r, g_now, batch[i].from,
                        batch[i].mtype, batch[i].data, batch[i].len);
        free(batch[i].data);
    }
}

static void step(void)
{
    step_holding(NULL, NULL, 0);
}

/* A file "big" on A of nchunks blocks of random bytes, all different
 * (make_file's bytes repeat every 256), published and announced. */
static void make_big_on_a(size_t nchunks, uint64_t seed)
{
    mfs_attr a;
    assert_int_equal(mfs_store_mknod(g_a.s, MFS_ROOT_INO, "big", S_IFREG | 0644,
                                     0, 0, 0, &a),
                     0);
    size_t len = nchunks * MFS_CHUNK_SIZE;
    uint64_t *buf = malloc(len);
    mfs_rng rng;
    mfs_rng_seed(&rng, seed);
    for (size_t i = 0; i < len / 8; i++)
        buf[i] = mfs_rng_next(&rng);
    assert_int_equal(mfs_store_write(g_a.s, a.ino, 0, buf, len), (ssize_t)len);
    free(buf);
    assert_int_equal(mfs_store_publish(g_a.s, a.ino), 0);
    mfs_repl_changed(g_a.r);
}

static uint64_t size_on_b(const char *name)
{
    mfs_attr a;
    if (mfs_store_lookup(g_b.s, MFS_ROOT_INO, name, &a))
        return UINT64_MAX;
    return a.size;
}

/* A small file written while a large one is being fetched reaches the
 * peer ahead of the large one's chunks: asked for as soon as its op is
 * applied (not in hash order behind the queue), its chunk sent on the
 * urgent channel (not behind the bulk queue). Tried on two nodes in a
 * namespace during a 1 GiB transfer, such a file took 0.2-3.7 s. */
static int setup_small_window(void **state)
{
    g_window = 4 * (MFS_CHUNK_SIZE / 4); /* 4 chunks in flight */
    int rc = setup(state);
    g_window = 0;
    return rc;
}

static void test_small_ahead_of_big(void **state)
{
    (void)state;
    meet();
    make_big_on_a(64, 4);
    for (int i = 0; i < 4; i++)
        step(); /* B has the op and asks for the first chunks */
    assert_true(size_on_b("big") != 64 * MFS_CHUNK_SIZE);
    g_chunks_urgent = g_chunks_bulk = 0;
    make_file(&g_a, "small", 100, 5);
    int rounds = 0;
    while (size_on_b("small") != 100 && rounds < 20) {
        step();
        rounds++;
    }
    print_message("small file complete on B after %d rounds; %zu urgent and "
                  "%zu bulk chunk messages meanwhile\n",
                  rounds, g_chunks_urgent, g_chunks_bulk);
    assert_int_equal(size_on_b("small"), 100);
    assert_true(rounds <= 4);
    assert_true(size_on_b("big") != 64 * MFS_CHUNK_SIZE); /* still coming */
    assert_int_equal(g_chunks_urgent, 1);
    assert_true(g_chunks_bulk > 0);
    pump();
    assert_same();
    assert_true(in_sync(&g_b));
}

/* Chunks stored after they came (the daemon's writer thread; the same a
 * tick later, as the simulator runs it): every chunk is asked for and
 * sent once, though the wanted list still names it until it is stored,
 * and the file arrives whole. */
static void chunk_writer(int mode)
{
    meet();
    size_t len = 200 * MFS_CHUNK_SIZE;
    make_big_on_a(200, 7);
    size_t nchunks = data_chunks(g_a.s, ino_of(g_a.s, MFS_ROOT_INO, "big"));
    g_chunks_urgent = g_chunks_bulk = 0;
    for (int i = 0; i < 5000 && size_on_b("big") != len; i++) {
        step();
        if (mode == MFS_REPL_STORE_THREAD && g_net.n == 0)
            usleep(1000); /* the writer's turn */
    }
    assert_int_equal(size_on_b("big"), len);
    print_message("%zu chunk messages for %zu chunks\n",
                  g_chunks_urgent + g_chunks_bulk, nchunks);
    assert_int_equal(g_chunks_urgent + g_chunks_bulk, nchunks);
    pump();
    assert_same();
    assert_true(in_sync(&g_b));
}

static void test_chunk_writer_thread(void **state)
{
    (void)state;
    chunk_writer(MFS_REPL_STORE_THREAD);
}

static void test_chunk_writer_next_tick(void **state)
{
    (void)state;
    chunk_writer(MFS_REPL_STORE_NEXT_TICK);
}

static int setup_writer(void **state, int mode)
{
    g_store_chunks = mode;
    int rc = setup(state);
    g_store_chunks = 0;
    return rc;
}

static int setup_writer_thread(void **state)
{
    return setup_writer(state, MFS_REPL_STORE_THREAD);
}

static int setup_writer_next_tick(void **state)
{
    return setup_writer(state, MFS_REPL_STORE_NEXT_TICK);
}

/* A pull's answer larger than apply_bytes is applied a slice per
 * mfs_repl_work() call; a push that comes meanwhile (a small file just
 * written: the urgent channel) is applied at once, between two slices,
 * not after the whole batch (a third node's file waited ~150 ms behind a
 * 256 KiB batch during a merge, bench/repl/merge.sh); the rest of the
 * pull's answer waits in order and its bookkeeping is done with its last
 * slice; B does not say in sync while ops wait; the stores end equal. */
static int setup_sliced(void **state)
{
    g_apply = 2048;
    int rc = setup(state);
    g_apply = 0;
    return rc;
}

/* Delivers what is queued, in order, up to and including the first OPS
 * message to B of more than min bytes of ops (1 if one was delivered). */
static int deliver_until_ops_to_b(size_t min)
{
    size_t n = g_net.n, i;
    int hit = 0;
    qmsg batch[MAXQ];
    memcpy(batch, g_net.q, n * sizeof(qmsg));
    g_net.n = 0;
    for (i = 0; i < n && !hit; i++) {
        /* u64 req, u8 flags, u32 total, u32 raw length, bytes */
        hit = batch[i].to == NODE_B && batch[i].mtype == MFS_MT_OPS &&
              batch[i].len >= 17 && mfs_be32_get(batch[i].data + 13) > min;
        mfs_repl_on_msg(by_id(batch[i].to)->r, g_now, batch[i].from,
                        batch[i].mtype, batch[i].data, batch[i].len);
        free(batch[i].data);
    }
    /* the rest first, then what the deliveries sent */
    memmove(g_net.q + (n - i), g_net.q, g_net.n * sizeof(qmsg));
    memcpy(g_net.q, batch + i, (n - i) * sizeof(qmsg));
    g_net.n += n - i;
    return hit;
}

static void test_sliced_apply(void **state)
{
    (void)state;
    write_while_cut_off(200, 0);
    g_net.drop_to_b = 0;
    mfs_repl_on_peer(g_a.r, g_now, NODE_B, MFS_PEER_ALIVE, 1);
    /* STATE, PULL (once B's lack has lasted the pull grace: no push is
     * coming), then A's answer: one OPS of all 200 files' ops */
    int hit = 0;
    for (int round = 0; round < 250 && !hit; round++) {
        g_now += 1000;
        mfs_repl_tick(g_a.r, g_now);
        mfs_repl_tick(g_b.r, g_now);
        hit = deliver_until_ops_to_b(8 * 1024);
    }
    assert_true(hit);
    /* its first slice is applied, the rest waits */
    assert_true(mfs_repl_work_pending(g_b.r));
    assert_true(size_on_b("f000") != UINT64_MAX);
    assert_true(size_on_b("f199") == UINT64_MAX);
    assert_false(in_sync(&g_b));
    mfs_repl_status st;
    mfs_repl_peer p[2];
    mfs_repl_status_get(g_b.r, &st, p, 2);
    assert_true(st.catching_up);
    /* the rest of the answer (its last, empty OPS) reaches B too */
    while (g_net.n)
        deliver_until_ops_to_b(SIZE_MAX);
    /* a new file on A: pushed on the urgent channel, applied on arrival */
    make_file(&g_a, "urgent", 100, 77);
    g_now += 1000;
    mfs_repl_tick(g_a.r, g_now);
    int pushes = 0;
    for (size_t i = 0; i < g_net.n; i++)
        pushes += g_net.q[i].to == NODE_B && g_net.q[i].mtype == MFS_MT_OPS &&
                  g_net.q[i].channel == MFS_SYNC_URGENT;
    assert_int_equal(pushes, 1);
    while (g_net.n)
        deliver_until_ops_to_b(SIZE_MAX);
    assert_true(size_on_b("urgent") != UINT64_MAX);
    assert_true(mfs_repl_work_pending(g_b.r)); /* before the batch's end */
    assert_true(size_on_b("f199") == UINT64_MAX);
    /* the rest, a slice a call */
    int calls = 0;
    size_t queued = g_net.n;
    while (mfs_repl_work(g_b.r, g_now += 100)) {
        calls++;
        assert_true(calls < 1000);
    }
    print_message("200 files' ops applied in %d more slices\n", calls + 1);
    assert_true(calls >= 5);
    /* of the message's small versions, only the first MFS_APPLY_SMALL are
     * asked for ahead of the queue, as when it was applied whole (not 32
     * a slice: a merge of small files crowded a third node's file out) */
    size_t asked = 0;
    for (size_t i = queued; i < g_net.n; i++)
        if (g_net.q[i].from == NODE_B && g_net.q[i].mtype == MFS_MT_WANT)
            asked += g_net.q[i].len / MFS_HASH_LEN;
    assert_true(asked < MFS_APPLY_SMALL);
    assert_false(mfs_repl_work_pending(g_b.r));
    assert_true(size_on_b("f199") == 100 || size_on_b("f199") == 0);
    /* the pull is done: B asks for nothing more, and all is in sync */
    mfs_repl_status_get(g_b.r, &st, p, 2);
    uint64_t pulls = st.pulls;
    assert_int_equal(st.ops_to_go, 0);
    pump();
    assert_same();
    assert_true(in_sync(&g_b));
    assert_true(in_sync(&g_a));
    mfs_repl_status_get(g_b.r, &st, p, 2);
    assert_int_equal(st.pulls, pulls);
    assert_int_equal(st.bad_msgs, 0);
}

/* Delivers what is queued, and what that sends, for ms milliseconds of
 * ticks, except OPS from A, which are kept aside in held. */
static void deliver_holding_ops(int ms, qmsg *held, size_t *nheld)
{
    for (int t = 0; t < ms; t++)
        step_holding(held, nheld, MFS_MT_OPS);
}

/* A change reaches a peer by its push, and the STATE that tells of it may
 * overtake the push (on the urgent channel, past a large push on the bulk
 * one; fsync makes the change durable, so STATE tells of it at once): the
 * peer waits the pull grace for the push before it pulls, so the ops do
 * not cross the wire twice (an editor's save with fsync of a 50 MiB file
 * sent its 75 kB chunk list twice). And a push that never comes is pulled
 * once the grace is over. */
static void test_state_before_push(void **state)
{
    (void)state;
    meet();
    mfs_repl_status st;
    mfs_repl_peer p[2];
    mfs_repl_status_get(g_b.r, &st, p, 2);
    uint64_t pulls = st.pulls;
    qmsg held[MAXQ];
    size_t nheld = 0;
    make_file(&g_a, "f", 100, 1);
    assert_int_equal(mfs_store_commit(g_a.s, 1), 0);
    mfs_repl_changed(g_a.r);
    deliver_holding_ops(50, held, &nheld);
    assert_true(nheld > 0);
    assert_true(size_on_b("f") == UINT64_MAX);
    mfs_repl_status_get(g_b.r, &st, p, 2);
    assert_int_equal(st.pulls, pulls); /* B heard of it, and waits */
    assert_int_equal(st.ops_to_go > 0, 1);
    /* the push arrives within the grace: no pull at all */
    memcpy(g_net.q + g_net.n, held, nheld * sizeof(qmsg));
    g_net.n += nheld;
    pump();
    assert_same();
    mfs_repl_status_get(g_b.r, &st, p, 2);
    assert_int_equal(st.pulls, pulls);
    /* a push that is lost: B pulls once the grace is over */
    nheld = 0;
    make_file(&g_a, "g", 100, 2);
    assert_int_equal(mfs_store_commit(g_a.s, 1), 0);
    mfs_repl_changed(g_a.r);
    deliver_holding_ops(5, held, &nheld);
    assert_true(nheld > 0);
    for (size_t i = 0; i < nheld; i++)
        free(held[i].data);
    pump();
    assert_same();
    mfs_repl_status_get(g_b.r, &st, p, 2);
    assert_int_equal(st.pulls, pulls + 1);
}

/* A peer's ops are never sent back to it: B applies A's push, and A's
 * STATE that would tell B that A holds them is late (A's commit had not
 * reached the disk yet, or the STATE was lost). B's own pushes must still
 * know that A holds what A sent: a 50 MiB file's version op (75 kB of
 * chunk list) crossed the wire twice, to B and back (the copy in
 * tests/system/mesh_chunks.sh moved 290-330 kB instead of ~210 kB). */
static void test_no_echo(void **state)
{
    (void)state;
    meet();
    qmsg held[MAXQ];
    size_t nheld = 0;
    make_file(&g_a, "f", 3 * MFS_CHUNK_SIZE, 1);
    make_file(&g_a, "g", 100, 2);
    size_t ops0 = g_ops_from_b;
    for (int t = 0; t < 200; t++) {
        step_holding(held, &nheld, MFS_MT_STATE);
        /* B's store committed what it applied (the daemon's commit hook
         * calls this): B pushes what it holds and A may lack */
        mfs_repl_changed(g_b.r);
    }
    assert_true(nheld > 0); /* A's STATEs were held back */
    assert_true(size_on_b("f") == 3 * MFS_CHUNK_SIZE);
    assert_true(size_on_b("g") == 100);
    assert_int_equal(g_ops_from_b - ops0, 0); /* none sent back */
    /* the late STATEs arrive: all is in sync */
    memcpy(g_net.q + g_net.n, held, nheld * sizeof(qmsg));
    g_net.n += nheld;
    pump();
    assert_same();
    assert_true(in_sync(&g_a));
    assert_true(in_sync(&g_b));
}

/* ---- a snapshot installed on a thread of its own ---- */

/* Holds a store's writer lock from a thread of its own (a group:
 * mfs_store_group_begin) until told to let go: an install then waits for
 * it, as the sync thread would have waited for the install. */
typedef struct wgate {
    mfs_store *s;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    int held, release;
} wgate;

static void *wgate_main(void *arg)
{
    wgate *g = arg;
    int rc = mfs_store_group_begin(g->s);
    pthread_mutex_lock(&g->mu);
    g->held = rc == 0 ? 1 : -1;
    pthread_cond_broadcast(&g->cond);
    /* 10 s at most: an engine that waits for the install (as it did on
     * its own thread) then fails the test instead of hanging it */
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 10;
    while (!g->release &&
           pthread_cond_timedwait(&g->cond, &g->mu, &until) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&g->mu);
    if (rc == 0)
        mfs_store_group_end(g->s);
    return NULL;
}

static void wgate_close(wgate *g)
{
    pthread_mutex_lock(&g->mu);
    g->release = 1;
    pthread_cond_broadcast(&g->cond);
    pthread_mutex_unlock(&g->mu);
    pthread_join(g->thread, NULL);
}

static void wgate_open(wgate *g, mfs_store *s)
{
    memset(g, 0, sizeof(*g));
    g->s = s;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cond, NULL);
    assert_int_equal(pthread_create(&g->thread, NULL, wgate_main, g), 0);
    pthread_mutex_lock(&g->mu);
    while (!g->held)
        pthread_cond_wait(&g->cond, &g->mu);
    int held = g->held;
    pthread_mutex_unlock(&g->mu);
    if (held != 1) {
        wgate_close(g);
        fail_msg("cannot hold the store's writer lock");
    }
}

static mfs_repl_status status_of(node *nd)
{
    mfs_repl_status st;
    mfs_repl_peer p[4];
    mfs_repl_status_get(nd->r, &st, p, 4);
    return st;
}

/* Messages of type mtype from `from` in the queue. */
static size_t queued(uint64_t from, uint8_t mtype)
{
    size_t n = 0;
    for (size_t i = 0; i < g_net.n; i++)
        n += g_net.q[i].from == from && g_net.q[i].mtype == mtype;
    return n;
}

/* B joins after A folded its op log: it fetches a snapshot, and (the
 * daemon's mode) installs it on a thread of its own. While that waits for
 * the store's writer lock (held here, as the install holds it for
 * seconds with 100,000 files), B's engine still works: ticks, answers an
 * ASKHELD with a HELD, takes A's STATE and a push (dropped: no op is
 * applied, no pull starts), and its status can be read; the fetch shows
 * whole and nothing installed. Once the lock is free the install ends,
 * B pulls what came meanwhile, and both stores end equal. */
static void test_snapshot_install_thread(void **state)
{
    (void)state;
    for (int i = 0; i < 40; i++) {
        char name[16];
        snprintf(name, sizeof name, "f%d", i);
        make_file(&g_a, name, 100 + (size_t)i, i);
    }
    mfs_vv vv;
    assert_int_equal(mfs_store_vv(g_a.s, &vv), 0);
    mfs_collect_config cc = {.retention_ms = 0};
    mfs_store_collect_set(g_a.s, &cc);
    mfs_store_collect_settled(g_a.s, &vv);
    mfs_vv_free(&vv);
    assert_int_equal(mfs_store_collect_now(g_a.s, NULL), 0);
    mfs_vv empty = {0};
    uint8_t buf[4096];
    assert_int_equal(mfs_store_ops_since(g_a.s, &empty, buf, sizeof buf),
                     -ESTALE); /* folded: B needs a snapshot */

    wgate gate;
    wgate_open(&gate, g_b.s);
    mfs_repl_on_peer(g_a.r, g_now, NODE_B, MFS_PEER_ALIVE, 1);
    mfs_repl_on_peer(g_b.r, g_now, NODE_A, MFS_PEER_ALIVE, 1);
    mfs_repl_status st = {0};
    for (int t = 0; t < 20000; t++) {
        step();
        if (g_net.n == 0)
            usleep(200); /* A's build thread's turn */
        st = status_of(&g_b);
        if (st.snap_from == NODE_A && st.snap_bytes_total &&
            st.snap_bytes_done == st.snap_bytes_total)
            break; /* fetched whole: installing */
    }
    assert_int_equal(st.snap_from, NODE_A);
    assert_true(st.snap_bytes_total > 0);
    assert_int_equal(st.snap_bytes_done, st.snap_bytes_total);
    assert_int_equal(st.snaps_installed, 0);

    /* the engine works meanwhile */
    make_file(&g_a, "during", 100, 77); /* pushed to B: dropped there */
    size_t held0 = queued(NODE_B, MFS_MT_HELD);
    uint8_t ask[8];
    mfs_be64_put(ask, 1);
    feed(&g_b, MFS_MT_ASKHELD, ask, sizeof ask);
    uint64_t pulls0 = status_of(&g_b).pulls;
    for (int t = 0; t < 300; t++) {
        step_holding(NULL, NULL, 0);
        if (t % 50 == 0)
            mfs_repl_on_peer(g_a.r, g_now, NODE_B, MFS_PEER_ALIVE, 1);
    }
    feed(&g_b, MFS_MT_ASKHELD, ask, sizeof ask);
    mfs_repl_tick(g_b.r, g_now + 1000);
    assert_true(queued(NODE_B, MFS_MT_HELD) > held0);
    st = status_of(&g_b);
    assert_int_equal(st.snaps_installed, 0); /* still waiting */
    assert_int_equal(st.snap_from, NODE_A);
    assert_int_equal(st.pulls, pulls0); /* no pull while it installs */
    assert_true(size_on_b("f0") == UINT64_MAX);

    /* let it in: B installs, then pulls what it dropped */
    wgate_close(&gate);
    for (int t = 0; t < 20000 && !(status_of(&g_b).snaps_installed == 1 &&
                                   size_on_b("during") == 100);
         t++) {
        step();
        if (g_net.n == 0)
            usleep(200); /* the install thread's turn */
    }
    st = status_of(&g_b);
    assert_int_equal(st.snaps_installed, 1);
    assert_int_equal(st.snap_from, 0);
    assert_int_equal(size_on_b("f39"), 139);
    assert_int_equal(size_on_b("during"), 100);
    pump();
    assert_same();
    assert_true(in_sync(&g_b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_push_and_fetch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_content_pushed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_catch_up_by_pull, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_edits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forged_chunk, setup, teardown),
        cmocka_unit_test_setup_teardown(test_small_ahead_of_big,
                                        setup_small_window, teardown),
        cmocka_unit_test_setup_teardown(test_chunk_writer_thread,
                                        setup_writer_thread, teardown),
        cmocka_unit_test_setup_teardown(test_chunk_writer_next_tick,
                                        setup_writer_next_tick, teardown),
        cmocka_unit_test_setup_teardown(test_sliced_apply, setup_sliced,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_state_before_push, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_no_echo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acks_need_chunks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acks_members, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acks_early_push, setup, teardown),
        cmocka_unit_test_setup_teardown(test_acks_reordered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_install_thread,
                                        setup_writer_thread, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
