/*
 * test_sync_sim.c - the sync core under the deterministic simulator: exactly
 * once delivery under loss/duplication/reordering, bounded memory,
 * membership convergence, partitions, restarts, replayed and forged
 * datagrams, amplification and flood limits. Every test prints its seed;
 * MESHFS_SEED=N replays one. MESHFS_SIM_SEEDS=K runs K seeds (default 3).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hs.h"
#include "sim.h"
#include "testutil.h"
#include "wire.h"

#define N 5
#define SEC 1000000ull

/* make_sim gives the nodes per-node keys (the test_ident_* variants) */
static int g_ident;
static mfs_sync_config g_cfg; /* make_sim's config when g_cfg_set */
static int g_cfg_set;

typedef struct ctx {
    mfs_sim *sim;
    mfs_rng rng;
    uint64_t seed;
    /* exactly-once bookkeeping */
    unsigned total;
    uint8_t *seen; /* per message: delivery count */
    uint64_t delivered, bad;
    /* tap */
    unsigned tap_from;
    uint64_t tap_count, tap_bytes_to_x, tap_bytes_to_x_ip;
    mfs_addr x;
    uint8_t (*cap)[MFS_WIRE_MAX];
    size_t *caplen;
    size_t ncap, capmax;
    unsigned cap_from;
    /* latency */
    uint8_t hdr[6]; /* version, flags, mesh tag of this mesh */
    /* wall clocks: each node's skew from the simulator's time */
    int wall;
    int64_t skew_us[8];
} ctx;

#define UNIX0_US 1765000000000000ull

static uint64_t ctx_wall(void *arg, unsigned node, uint64_t now_us)
{
    ctx *c = arg;
    return (uint64_t)((int64_t)(UNIX0_US + now_us) + c->skew_us[node]);
}

/* message layout: u32 msg index, u32 len, then bytes f(index) */
static uint8_t pat(uint32_t idx, size_t i)
{
    return (uint8_t)((idx * 2654435761u) >> 13 ^ (uint32_t)i * 31u);
}

static void on_msg(void *arg, unsigned node, uint64_t from, uint8_t mtype,
                   const uint8_t *d, size_t len)
{
    ctx *c = arg;
    if (len < 8) {
        c->bad++;
        return;
    }
    uint32_t idx = mfs_be32_get(d), l = mfs_be32_get(d + 4);
    if (idx >= c->total || l != len || mtype != (uint8_t)idx) {
        c->bad++;
        return;
    }
    for (size_t i = 8; i < len; i++)
        if (d[i] != pat(idx, i)) {
            c->bad++;
            return;
        }
    if (c->seen[idx] < 255)
        c->seen[idx]++;
    c->delivered++;
    if (mtype == 1 && len < 100) { /* latency probe: bytes 8..15 = sent at */
        (void)node;
    }
    (void)from;
}

static void tap(void *arg, unsigned from, const mfs_addr *to,
                const uint8_t *buf, size_t len)
{
    ctx *c = arg;
    if (from == c->tap_from)
        c->tap_count++;
    memcpy(c->hdr, buf, 6);
    if (mfs_addr_eq(to, &c->x))
        c->tap_bytes_to_x += len;
    if (to->ss.ss_family == AF_INET && c->x.ss.ss_family == AF_INET &&
        ((const struct sockaddr_in *)&to->ss)->sin_addr.s_addr ==
            ((const struct sockaddr_in *)&c->x.ss)->sin_addr.s_addr)
        c->tap_bytes_to_x_ip += len; /* any port */
    if (c->cap && from == c->cap_from && c->ncap < c->capmax) {
        memcpy(c->cap[c->ncap], buf, len);
        c->caplen[c->ncap++] = len;
    }
}

static void cfg_default(mfs_sync_config *cfg)
{
    mfs_sync_config_default(cfg);
}

static void make_sim(ctx *c, uint64_t seed, unsigned n, int star)
{
    mfs_sync_config cfg;
    cfg_default(&cfg);
    if (g_cfg_set)
        cfg = g_cfg;
    mfs_sim_hooks h = {c, on_msg, tap, NULL, c->wall ? ctx_wall : NULL};
    c->seed = seed;
    c->tap_from = 999;
    mfs_rng_seed(&c->rng, seed);
    assert_int_equal(mfs_sim_new(seed, n, &cfg, &h, &c->sim), 0);
    if (g_ident)
        assert_int_equal(mfs_sim_identities(c->sim), 0);
    for (unsigned i = 1; i < n; i++)
        assert_int_equal(mfs_sim_seed(c->sim, i, star ? 0 : i - 1), 0);
}

static int all_alive(ctx *c, unsigned n)
{
    for (unsigned a = 0; a < n; a++)
        for (unsigned b = 0; b < n; b++)
            if (a != b && mfs_sim_peer_state(c->sim, a, b) != MFS_PEER_ALIVE)
                return 0;
    return 1;
}

static void run_until_alive(ctx *c, unsigned n, uint64_t limit)
{
    uint64_t end = mfs_sim_now(c->sim) + limit;
    while (!all_alive(c, n) && mfs_sim_now(c->sim) < end)
        mfs_sim_run(c->sim, mfs_sim_now(c->sim) + 100000);
}

static size_t msg_size(mfs_rng *r)
{
    uint64_t k = mfs_rng_below(r, 100);
    if (k < 70)
        return 8 + mfs_rng_below(r, 600); /* small: metadata */
    if (k < 95)
        return 8 + mfs_rng_below(r, 16000); /* a few fragments */
    return 8 + mfs_rng_below(r, 64000);     /* bulk */
}

static void send_one(ctx *c, uint32_t idx, unsigned from, unsigned to,
                     size_t len)
{
    uint8_t *b = malloc(len);
    assert_non_null(b);
    mfs_be32_put(b, idx);
    mfs_be32_put(b + 4, (uint32_t)len);
    for (size_t i = 8; i < len; i++)
        b[i] = pat(idx, i);
    int ch = len < 1000 ? MFS_SYNC_URGENT : MFS_SYNC_BULK;
    int rc;
    while ((rc = mfs_sim_send(c->sim, from, to, ch, (uint8_t)idx, b, len)) ==
           -ENOBUFS)
        mfs_sim_run(c->sim, mfs_sim_now(c->sim) + 10000);
    assert_int_equal(rc, 0);
    free(b);
}

/* 10,000 messages of mixed sizes between 5 nodes, 30% loss, 10%
 * duplication, 1-40 ms delay (heavy reordering): each delivered exactly
 * once, intact; memory bounded during the run and released after. */
static void run_exactly_once(uint64_t seed, unsigned total)
{
    ctx c;
    memset(&c, 0, sizeof(c));
    make_sim(&c, seed, N, 1);
    mfs_sim_net net = {0.30, 0.10, 1000, 40000};
    mfs_sim_set_net(c.sim, &net);
    run_until_alive(&c, N, 30 * SEC);
    assert_true(all_alive(&c, N));

    uint64_t base_mem[N];
    for (unsigned i = 0; i < N; i++)
        base_mem[i] = mfs_sync_core_mem(mfs_sim_core(c.sim, i));
    c.total = total;
    c.seen = calloc(total, 1);
    uint64_t peak = 0, t0 = mfs_sim_now(c.sim);
    for (uint32_t idx = 0; idx < total; idx++) {
        unsigned from = (unsigned)mfs_rng_below(&c.rng, N);
        unsigned to = (unsigned)((from + 1 + mfs_rng_below(&c.rng, N - 1)) % N);
        send_one(&c, idx, from, to, msg_size(&c.rng));
        if (idx % 50 == 49) {
            mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 5000);
            for (unsigned i = 0; i < N; i++) {
                uint64_t m = mfs_sync_core_mem(mfs_sim_core(c.sim, i));
                if (m > peak)
                    peak = m;
            }
        }
    }
    uint64_t end = mfs_sim_now(c.sim) + 600 * SEC;
    while (c.delivered < total && mfs_sim_now(c.sim) < end)
        mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 100000);
    /* let the last acks land, then everything must be released */
    mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 5 * SEC);
    unsigned missing = 0, dups = 0;
    for (unsigned i = 0; i < total; i++) {
        missing += c.seen[i] == 0;
        dups += c.seen[i] > 1;
    }
    printf("seed %llu: %u msgs in %.1f s sim time, missing %u dup %u bad %llu"
           " peak mem %.1f MB\n",
           (unsigned long long)seed, total,
           (double)(mfs_sim_now(c.sim) - t0) / SEC, missing, dups,
           (unsigned long long)c.bad, (double)peak / 1e6);
    if (missing || dups) {
        for (unsigned i = 0; i < N; i++) {
            mfs_peer_stat st[N];
            size_t n = mfs_sync_core_peers(mfs_sim_core(c.sim, i), st, N);
            for (size_t k = 0; k < n; k++) {
                printf("node %u peer %zu: st %d q %llu rxbuf %llu cwnd %llu "
                       "out %llu in %llu dropped %llu ptos %llu lost %llu "
                       "retx %llu srtt %llu drops:",
                       i, k, st[k].state,
                       (unsigned long long)st[k].queued_bytes,
                       (unsigned long long)st[k].rx_buffered,
                       (unsigned long long)st[k].cwnd,
                       (unsigned long long)st[k].msgs_out,
                       (unsigned long long)st[k].msgs_in,
                       (unsigned long long)st[k].msgs_dropped,
                       (unsigned long long)st[k].ptos,
                       (unsigned long long)st[k].pkts_lost,
                       (unsigned long long)st[k].retransmits,
                       (unsigned long long)st[k].srtt_us);
                for (int r = 0; r < MFS_DROP__COUNT; r++)
                    printf(" %llu", (unsigned long long)st[k].drops[r]);
                printf("\n");
            }
        }
    }
    assert_int_equal(missing, 0);
    assert_int_equal(dups, 0);
    assert_int_equal(c.bad, 0);
    /* at 30% loss a peer may briefly look suspect, but none is dead */
    for (unsigned a = 0; a < N; a++)
        for (unsigned b = 0; b < N; b++)
            if (a != b)
                assert_int_not_equal(mfs_sim_peer_state(c.sim, a, b),
                                     MFS_PEER_DEAD);
    /* bound: per node, (N-1) peers x (windows + one max message) x 2 */
    mfs_sync_config cfg;
    mfs_sync_config_default(&cfg);
    assert_true(peak < (uint64_t)(N - 1) * 2 *
                               (cfg.window_bulk + cfg.window_urgent + 200000) +
                           base_mem[0] * 2);
    for (unsigned i = 0; i < N; i++) {
        mfs_peer_stat st[N];
        size_t n = mfs_sync_core_peers(mfs_sim_core(c.sim, i), st, N);
        for (size_t k = 0; k < n; k++) {
            assert_int_equal(st[k].queued_bytes, 0);
            assert_int_equal(st[k].rx_buffered, 0);
        }
        assert_int_equal(mfs_sync_core_mem(mfs_sim_core(c.sim, i)),
                         base_mem[i]);
    }
    free(c.seen);
    mfs_sim_free(c.sim);
}

static void test_exactly_once_many_seeds(void **state)
{
    /* one seed at full scale, then more seeds at 2,000 messages each */
    const char *e = getenv("MESHFS_SIM_SEEDS");
    unsigned seeds = e ? (unsigned)atoi(e) : 3;
    uint64_t s0 = mfs_test_seed(1);
    run_exactly_once(s0, 10000);
    if (getenv("MESHFS_SEED"))
        return;
    for (unsigned k = 1; k <= seeds; k++)
        run_exactly_once(s0 + k, e ? 10000 : 1000);
}

/* Node 4 is cut off: everyone declares it dead (and it them), within the
 * configured time; after healing all are alive again. */
static void test_partition_dead_then_alive(void **state)
{
    ctx c;
    memset(&c, 0, sizeof(c));
    uint64_t seed = mfs_test_seed(42);
    printf("seed %llu\n", (unsigned long long)seed);
    make_sim(&c, seed, N, 0); /* a chain: gossip must spread membership */
    mfs_sim_net net = {0.10, 0.05, 500, 5000};
    mfs_sim_set_net(c.sim, &net);
    run_until_alive(&c, N, 20 * SEC);
    assert_true(all_alive(&c, N));

    mfs_sim_isolate(c.sim, 4, 1);
    uint64_t t_cut = mfs_sim_now(c.sim);
    mfs_sim_run(c.sim, t_cut + 1500000);
    for (unsigned a = 0; a < 4; a++)
        assert_int_equal(mfs_sim_peer_state(c.sim, a, 4), MFS_PEER_SUSPECT);
    mfs_sim_run(c.sim, t_cut + 5600000);
    for (unsigned a = 0; a < 4; a++) {
        assert_int_equal(mfs_sim_peer_state(c.sim, a, 4), MFS_PEER_DEAD);
        assert_int_equal(mfs_sim_peer_state(c.sim, 4, a), MFS_PEER_DEAD);
        assert_int_equal(mfs_sync_core_send(mfs_sim_core(c.sim, a),
                                            mfs_sim_id(c.sim, 4), 0, 0, "x", 1),
                         -EHOSTDOWN);
    }
    /* the others stay alive among themselves */
    for (unsigned a = 0; a < 4; a++)
        for (unsigned b = 0; b < 4; b++)
            if (a != b)
                assert_int_equal(mfs_sim_peer_state(c.sim, a, b),
                                 MFS_PEER_ALIVE);
    mfs_sim_run(c.sim, t_cut + 30 * SEC);
    mfs_sim_isolate(c.sim, 4, 0);
    uint64_t t_heal = mfs_sim_now(c.sim);
    run_until_alive(&c, N, 10 * SEC);
    printf("healed in %.2f s\n", (double)(mfs_sim_now(c.sim) - t_heal) / SEC);
    assert_true(all_alive(&c, N));
    assert_true(mfs_sim_now(c.sim) - t_heal < 4 * SEC);
    mfs_sim_free(c.sim);
}

/* Datagrams node a sent to node b so far. */
static uint64_t dgrams_to(ctx *c, unsigned a, unsigned b)
{
    mfs_peer_stat st[N];
    size_t n = mfs_sync_core_peers(mfs_sim_core(c->sim, a), st, N);
    for (size_t k = 0; k < n; k++)
        if (st[k].id == mfs_sim_id(c->sim, b))
            return st[k].dgrams_out;
    return 0;
}

/* Two nodes with cfg, node 1 seeded with node 0, both alive. */
static void make_pair(ctx *c, uint64_t seed, const mfs_sync_config *cfg)
{
    mfs_sim_hooks h = {c, on_msg, tap, NULL, NULL};
    c->seed = seed;
    c->tap_from = 999;
    assert_int_equal(mfs_sim_new(seed, 2, cfg, &h, &c->sim), 0);
    assert_int_equal(mfs_sim_seed(c->sim, 1, 0), 0);
    run_until_alive(c, 2, 10 * SEC);
    assert_true(all_alive(c, 2));
}

/* A peer that declared us dead while we were quiet (we had nothing to say,
 * so we heartbeat every idle_hb_ms) hears from us within a probe period
 * of the heal: its probes carry no echo, and a heartbeat without an echo
 * is answered at once. (It waited for our next quiet heartbeat, up to 12 s
 * with the daemon's timings: a partition's catch-up started that late.) */
static void test_heal_while_quiet(void **state)
{
    ctx c;
    memset(&c, 0, sizeof(c));
    uint64_t seed = mfs_test_seed(43);
    printf("seed %llu\n", (unsigned long long)seed);
    mfs_sync_config cfg;
    cfg_default(&cfg);
    cfg.idle_hb_ms = 12000; /* the daemon's (node/mesh.c) */
    cfg.idle_after_ms = 2500;
    make_pair(&c, seed, &cfg);
    mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 20 * SEC); /* the link is quiet */

    mfs_sim_link(c.sim, 0, 1, 0);
    uint64_t t_cut = mfs_sim_now(c.sim);
    assert_int_equal(mfs_sync_core_send(mfs_sim_core(c.sim, 0),
                                        mfs_sim_id(c.sim, 1), 1, 0, "x", 1),
                     0);
    mfs_sim_run(c.sim, t_cut + 10 * SEC);
    assert_int_equal(mfs_sim_peer_state(c.sim, 0, 1), MFS_PEER_DEAD);
    assert_int_equal(mfs_sim_peer_state(c.sim, 1, 0), MFS_PEER_ALIVE);
    mfs_sim_link(c.sim, 0, 1, 1);
    uint64_t t_heal = mfs_sim_now(c.sim);
    run_until_alive(&c, 2, 20 * SEC);
    double took = (double)(mfs_sim_now(c.sim) - t_heal) / SEC;
    printf("alive again %.2f s after the heal\n", took);
    assert_true(all_alive(&c, 2));
    /* dead for ~5 s: probed every ~160 ms */
    assert_true(took <= 0.25);

    /* a peer gone for good costs one probe per probe_ms once it has been
     * dead half a minute, and the first 30 s cost at most ~110 */
    mfs_sim_link(c.sim, 0, 1, 0);
    t_cut = mfs_sim_now(c.sim);
    assert_int_equal(mfs_sync_core_send(mfs_sim_core(c.sim, 0),
                                        mfs_sim_id(c.sim, 1), 1, 0, "y", 1),
                     0);
    while (mfs_sim_peer_state(c.sim, 0, 1) != MFS_PEER_DEAD &&
           mfs_sim_now(c.sim) < t_cut + 120 * SEC)
        mfs_sim_run(c.sim, mfs_sim_now(c.sim) + SEC / 10);
    assert_int_equal(mfs_sim_peer_state(c.sim, 0, 1), MFS_PEER_DEAD);
    uint64_t t_dead = mfs_sim_now(c.sim);
    uint64_t d0 = dgrams_to(&c, 0, 1);
    mfs_sim_run(c.sim, t_dead + 30 * SEC);
    uint64_t d1 = dgrams_to(&c, 0, 1);
    /* dead stays dead until it is heard (the quiet link's longer
     * thresholds made it suspect again, and probed fast again, 36 s on) */
    assert_int_equal(mfs_sim_peer_state(c.sim, 0, 1), MFS_PEER_DEAD);
    mfs_sim_run(c.sim, t_dead + 90 * SEC);
    uint64_t d2 = dgrams_to(&c, 0, 1);
    printf("probes to a dead peer: %llu in its first 30 s, %llu in the next "
           "60 s\n", (unsigned long long)(d1 - d0),
           (unsigned long long)(d2 - d1));
    assert_int_equal(mfs_sim_peer_state(c.sim, 0, 1), MFS_PEER_DEAD);
    assert_true(d1 - d0 <= 120);
    assert_true(d2 - d1 <= 61);
    mfs_sim_free(c.sim);
}

/* Someone watches (mfs_sync_core_watch: the status page, `meshfs top`):
 * an idle link that is cut shows its peer suspect within ~3 s and dead
 * within ~5 s (the busy pace), where unwatched it stays alive for the
 * idle link's ~27 s. The peer answers the watcher's heartbeats at once
 * (they carry no echo) whatever its own pace, and being watched costs a
 * heartbeat each way per 1.25 s. Issue 15: a page must turn a cut peer
 * red within 10 s. */
static void test_watch_quiet_link(void **state)
{
    (void)state;
    for (int watched = 0; watched < 2; watched++) {
        ctx c;
        memset(&c, 0, sizeof(c));
        uint64_t seed = mfs_test_seed(44);
        mfs_sync_config cfg;
        cfg_default(&cfg);
        cfg.hb_ms = 1250; /* the daemon's (node/mesh.c) */
        cfg.suspect_ms = 3000;
        cfg.dead_ms = 5000;
        cfg.idle_hb_ms = 12000;
        cfg.idle_after_ms = 2500;
        make_pair(&c, seed, &cfg);
        mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 30 * SEC); /* quiet */
        uint64_t d0 = dgrams_to(&c, 0, 1), r0 = dgrams_to(&c, 1, 0);
        /* the watcher polls every second, as the page does */
        for (int i = 0; i < 10; i++) {
            if (watched)
                mfs_sync_core_watch(mfs_sim_core(c.sim, 0), mfs_sim_now(c.sim),
                                    5000);
            mfs_sim_run(c.sim, mfs_sim_now(c.sim) + SEC);
        }
        assert_int_equal(mfs_sim_peer_state(c.sim, 0, 1), MFS_PEER_ALIVE);
        uint64_t d1 = dgrams_to(&c, 0, 1), r1 = dgrams_to(&c, 1, 0);
        printf("%s: %llu datagrams out, %llu back in 10 s\n",
               watched ? "watched" : "unwatched", (unsigned long long)(d1 - d0),
               (unsigned long long)(r1 - r0));
        if (watched) /* about one each way per 1.25 s */
            assert_true(d1 - d0 >= 7 && d1 - d0 <= 12 && r1 - r0 >= 7 &&
                        r1 - r0 <= 12);
        else
            assert_true(d1 - d0 <= 2);
        mfs_sim_link(c.sim, 0, 1, 0);
        uint64_t t_cut = mfs_sim_now(c.sim);
        int suspect_at = -1, dead_at = -1;
        for (int i = 1; i <= 100; i++) { /* 10 s, 100 ms steps */
            if (watched && i % 10 == 0)
                mfs_sync_core_watch(mfs_sim_core(c.sim, 0), mfs_sim_now(c.sim),
                                    5000);
            mfs_sim_run(c.sim, t_cut + (uint64_t)i * SEC / 10);
            int st = mfs_sim_peer_state(c.sim, 0, 1);
            if (st != MFS_PEER_ALIVE && suspect_at < 0)
                suspect_at = i * 100;
            if (st == MFS_PEER_DEAD && dead_at < 0)
                dead_at = i * 100;
        }
        printf("%s: suspect after %d ms, dead after %d ms (-1: not in "
               "10 s)\n",
               watched ? "watched" : "unwatched", suspect_at, dead_at);
        if (watched) {
            assert_true(suspect_at > 0 && suspect_at <= 3500);
            assert_true(dead_at > 0 && dead_at <= 5500);
        } else {
            assert_int_equal(suspect_at, -1); /* the idle link's pace */
        }
        mfs_sim_free(c.sim);
    }
}

/* Idle heartbeats cost at most 200 bytes/s per peer. */
static void test_idle_cost(void **state)
{
    ctx c;
    memset(&c, 0, sizeof(c));
    make_sim(&c, mfs_test_seed(7), N, 1);
    run_until_alive(&c, N, 10 * SEC);
    mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 5 * SEC);
    mfs_peer_stat a[N], b[N];
    size_t n = mfs_sync_core_peers(mfs_sim_core(c.sim, 2), a, N);
    mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 60 * SEC);
    mfs_sync_core_peers(mfs_sim_core(c.sim, 2), b, N);
    for (size_t k = 0; k < n; k++) {
        double bps = (double)(b[k].bytes_out - a[k].bytes_out) / 60.0;
        printf("idle: %.0f bytes/s to peer %zu\n", bps, k);
        assert_true(bps <= 200);
        assert_true(bps > 0);
    }
    mfs_sim_free(c.sim);
}

/* Each node measures its peers' clocks against its own from heartbeats
 * (NTP-style, core.c clock_sample): node 1 runs 10 minutes ahead, node 2
 * a day behind; the link 0 -> 1 takes 8 ms more than 1 -> 0, and 20% of
 * datagrams are lost. Every estimate has the right sign and lies within
 * its stated uncertainty of the truth; the asymmetric link's error is
 * about half the asymmetry (4 ms), which the uncertainty covers. */
static void test_clock_offsets(void **state)
{
    (void)state;
    ctx c;
    memset(&c, 0, sizeof(c));
    c.wall = 1;
    c.skew_us[1] = 600 * SEC;
    c.skew_us[2] = -86400 * SEC;
    make_sim(&c, mfs_test_seed(11), 3, 1);
    mfs_sim_net net = {0.20, 0.01, 1000, 3000};
    mfs_sim_set_net(c.sim, &net);
    mfs_sim_extra_delay(c.sim, 0, 1, 8000);
    run_until_alive(&c, 3, 30 * SEC);
    mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 20 * SEC);
    for (unsigned a = 0; a < 3; a++) {
        mfs_peer_stat st[4];
        size_t n = mfs_sync_core_peers(mfs_sim_core(c.sim, a), st, 4);
        assert_int_equal(n, 2);
        for (size_t k = 0; k < n; k++) {
            unsigned b = 0;
            while (b < 3 && mfs_sim_id(c.sim, b) != st[k].id)
                b++;
            assert_true(b < 3 && b != a);
            int64_t truth = c.skew_us[b] - c.skew_us[a];
            int64_t err = st[k].clock_offset_us - truth;
            printf("clock: node %u sees node %u at %+.3f ms (truth %+.3f, "
                   "uncertainty %.3f ms)\n",
                   a, b, st[k].clock_offset_us / 1000.0, truth / 1000.0,
                   st[k].clock_err_us / 1000.0);
            assert_true(st[k].clock_ok);
            assert_true(err <= (int64_t)st[k].clock_err_us &&
                        -err <= (int64_t)st[k].clock_err_us);
            assert_true(st[k].clock_err_us < 10000); /* rtt 2-14 ms */
            if (truth)
                assert_true((st[k].clock_offset_us > 0) == (truth > 0));
        }
    }
    mfs_sim_free(c.sim);
}

/* A restarted node is recognised by its new epoch and traffic resumes. */
static void test_restart_epoch(void **state)
{
    ctx c;
    memset(&c, 0, sizeof(c));
    make_sim(&c, mfs_test_seed(9), 3, 1);
    run_until_alive(&c, 3, 10 * SEC);
    mfs_peer_stat st[4];
    mfs_sync_core_peers(mfs_sim_core(c.sim, 0), st, 4);
    uint64_t e0 = 0;
    for (int k = 0; k < 2; k++)
        if (st[k].id == mfs_sim_id(c.sim, 2))
            e0 = st[k].epoch;
    assert_int_equal(mfs_sim_restart(c.sim, 2), 0);
    run_until_alive(&c, 3, 10 * SEC);
    assert_true(all_alive(&c, 3));
    mfs_sync_core_peers(mfs_sim_core(c.sim, 0), st, 4);
    for (int k = 0; k < 2; k++)
        if (st[k].id == mfs_sim_id(c.sim, 2)) {
            assert_true(st[k].epoch > e0);
            assert_int_equal(st[k].restarts, 1);
        }
    c.total = 2;
    c.seen = calloc(2, 1);
    send_one(&c, 0, 0, 2, 5000);
    send_one(&c, 1, 2, 1, 100);
    mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 2 * SEC);
    assert_int_equal(c.seen[0], 1);
    assert_int_equal(c.seen[1], 1);
    free(c.seen);
    mfs_sim_free(c.sim);
}

typedef struct snap {
    uint64_t msgs_in, bytes_in, dgrams_in, epoch, id;
    int state;
} snap;

static size_t take(mfs_sync_core *core, snap *s, uint64_t *drops_total)
{
    mfs_peer_stat st[8];
    size_t n = mfs_sync_core_peers(core, st, 8);
    *drops_total = 0;
    for (size_t k = 0; k < n; k++) {
        memset(&s[k], 0, sizeof(s[k]));
        s[k].msgs_in = st[k].msgs_in;
        s[k].bytes_in = st[k].bytes_in;
        s[k].dgrams_in = st[k].dgrams_in;
        s[k].epoch = st[k].epoch;
        s[k].id = st[k].id;
        s[k].state = st[k].state;
        for (int r = 0; r < MFS_DROP__COUNT; r++)
            *drops_total += st[k].drops[r];
    }
    for (int r = 0; r < MFS_DROP__COUNT; r++)
        *drops_total += mfs_sync_core_global_drops(core)[r];
    return n;
}

/* Replayed, forged, truncated, other-mesh and random datagrams change
 * nothing, deliver nothing and get no reply; each is counted. */
static void test_replay_and_forgery(void **state)
{
    ctx c;
    memset(&c, 0, sizeof(c));
    c.capmax = 4000;
    c.cap = malloc(c.capmax * MFS_WIRE_MAX);
    c.caplen = malloc(c.capmax * sizeof(size_t));
    c.cap_from = 0;
    make_sim(&c, mfs_test_seed(11), 2, 1);
    run_until_alive(&c, 2, 10 * SEC);
    c.total = 50;
    c.seen = calloc(50, 1);
    for (uint32_t i = 0; i < 50; i++)
        send_one(&c, i, 0, 1, i % 2 ? 100 : 5000);
    mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 3 * SEC);
    assert_int_equal(c.delivered, 50);
    assert_true(c.ncap > 50);

    mfs_sync_core *t = mfs_sim_core(c.sim, 1);
    snap before[8], after[8];
    uint64_t d0, d1;
    size_t n0 = take(t, before, &d0);
    c.tap_from = 1;
    c.tap_count = 0;
    uint64_t now = mfs_sim_now(c.sim);
    const mfs_addr *from0 = mfs_sim_addr(c.sim, 0);
    mfs_addr other = *from0;
    ((struct sockaddr_in *)&other.ss)->sin_port = htons(9999);
    uint64_t sent = 0;
    for (int round = 0; round < 3; round++)
        for (size_t k = 0; k < c.ncap; k++) {
            uint8_t b[MFS_WIRE_MAX + 10];
            size_t l = c.caplen[k];
            memcpy(b, c.cap[k], l);
            /* exact replay from the real and from another address */
            mfs_sync_core_input(t, now, round ? &other : from0, b, l);
            /* bit flip anywhere */
            size_t pos = mfs_rng_below(&c.rng, l);
            b[pos] ^= (uint8_t)(1u << mfs_rng_below(&c.rng, 8));
            mfs_sync_core_input(t, now, from0, b, l);
            b[pos] = c.cap[k][pos];
            /* truncated, extended, other mesh */
            mfs_sync_core_input(t, now, from0, b, mfs_rng_below(&c.rng, l));
            memset(b + l, 0, 10);
            mfs_sync_core_input(t, now, from0, b, l + 1 + k % 9);
            b[3] ^= 0x55;
            mfs_sync_core_input(t, now, from0, b, l);
            /* random garbage */
            for (size_t i = 0; i < l; i++)
                b[i] = (uint8_t)mfs_rng_next(&c.rng);
            mfs_sync_core_input(t, now, &other, b, l);
            sent += 6;
        }
    size_t n1 = take(t, after, &d1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0 * sizeof(snap));
    assert_int_equal(c.tap_count, 0);  /* no reply of any kind */
    assert_int_equal(c.delivered, 50); /* nothing delivered twice */
    printf("injected %llu bad datagrams, %llu counted as drops\n",
           (unsigned long long)sent, (unsigned long long)(d1 - d0));
    assert_int_equal(d1 - d0, sent); /* every one counted */
    /* and the node still works */
    mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 2 * SEC);
    assert_true(all_alive(&c, 2));
    free(c.seen);
    free(c.cap);
    free(c.caplen);
    mfs_sim_free(c.sim);
}

/* A captured hello replayed from a spoofed address: the node never sends
 * that address more bytes than it received from it. */
static void test_no_amplification(void **state)
{
    ctx c;
    memset(&c, 0, sizeof(c));
    c.capmax = 16;
    c.cap = malloc(c.capmax * MFS_WIRE_MAX);
    c.caplen = malloc(c.capmax * sizeof(size_t));
    c.cap_from = 1;
    make_sim(&c, mfs_test_seed(13), 3, 1); /* only 1 and 2 seed node 0 */
    mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 10000); /* 1's first hello */
    assert_true(c.ncap >= 1);
    /* X: an address nobody owns */
    struct sockaddr_in *x = (struct sockaddr_in *)&c.x.ss;
    x->sin_family = AF_INET;
    x->sin_addr.s_addr = htonl(0x0a0000feu);
    x->sin_port = htons(4444);
    c.x.len = sizeof(*x);
    /* node 2 has never heard of node 1: the replayed hello creates it */
    mfs_sim_inject(c.sim, 2, &c.x, c.cap[0], c.caplen[0]);
    mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 10 * SEC);
    printf("received %zu bytes from X, sent %llu to X\n", c.caplen[0],
           (unsigned long long)c.tap_bytes_to_x);
    assert_true(c.tap_bytes_to_x <= c.caplen[0]);
    free(c.cap);
    free(c.caplen);
    mfs_sim_free(c.sim);
}

/* A flood of junk from many unknown addresses does not starve members:
 * it is rate limited before the crypto, and member traffic flows. */
static void test_flood_rate_limit(void **state)
{
    ctx c;
    memset(&c, 0, sizeof(c));
    make_sim(&c, mfs_test_seed(17), 2, 1);
    run_until_alive(&c, 2, 10 * SEC);
    c.total = 200;
    c.seen = calloc(200, 1);
    mfs_sync_core *t = mfs_sim_core(c.sim, 1);
    mfs_addr junk = *mfs_sim_addr(c.sim, 0);
    uint8_t b[1200];
    uint64_t injected = 0;
    for (uint32_t i = 0; i < 200; i++) {
        send_one(&c, i, 0, 1, 300);
        /* 500 junk datagrams per 10 ms = 50,000/s, from many ports */
        for (int k = 0; k < 500; k++) {
            ((struct sockaddr_in *)&junk.ss)->sin_port =
                htons((uint16_t)(10000 + k));
            for (size_t j = 0; j < sizeof(b); j += 8)
                mfs_be64_put(b + (j + 8 <= sizeof(b) ? j : sizeof(b) - 8),
                             mfs_rng_next(&c.rng));
            memcpy(b, c.hdr, 6);  /* right version and mesh: reaches auth */
            memset(b + 14, 0, 8); /* dst 0: a plausible hello */
            if (b[0] == MFS_WIRE_VERSION_ID)
                b[1] = MFS_WIRE_PROBE; /* or probe */
            mfs_sync_core_input(t, mfs_sim_now(c.sim), &junk, b, sizeof(b));
            injected++;
        }
        mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 10000);
    }
    mfs_sim_run(c.sim, mfs_sim_now(c.sim) + SEC);
    const uint64_t *g = mfs_sync_core_global_drops(t);
    printf("junk %llu: mesh %llu rate %llu auth %llu; delivered %llu\n",
           (unsigned long long)injected, (unsigned long long)g[MFS_DROP_MESH],
           (unsigned long long)g[MFS_DROP_RATE],
           (unsigned long long)g[MFS_DROP_AUTH],
           (unsigned long long)c.delivered);
    assert_int_equal(c.delivered, 200);
    assert_true(g[MFS_DROP_RATE] > 0);
    assert_true(all_alive(&c, 2));
    free(c.seen);
    mfs_sim_free(c.sim);
}

/* ---- per-node keys ---- */

/* Runs test t with every node holding its own key. */
#define IDENT(t)                                                               \
    static void test_ident_##t(void **state)                                   \
    {                                                                          \
        g_ident = 1;                                                           \
        test_##t(state);                                                       \
        g_ident = 0;                                                           \
    }
static void test_deterministic(void **state);
IDENT(replay_and_forgery)
IDENT(no_amplification)
IDENT(restart_epoch)
IDENT(partition_dead_then_alive)
IDENT(deterministic)
IDENT(flood_rate_limit)

static uint64_t drops_of(mfs_sync_core *core, int reason)
{
    mfs_peer_stat st[8];
    size_t n = mfs_sync_core_peers(core, st, 8);
    uint64_t d = mfs_sync_core_global_drops(core)[reason];
    for (size_t k = 0; k < n; k++)
        d += st[k].drops[reason];
    return d;
}

/* Exactly once under 30% loss with sessions; every datagram is of
 * version 3, none sealed with the mesh key. */
static uint64_t g_v2; /* version 2 datagrams seen by tap_v3 */
static void tap_v3(void *arg, unsigned from, const mfs_addr *to,
                   const uint8_t *buf, size_t len)
{
    if (buf[0] != MFS_WIRE_VERSION_ID)
        g_v2++;
    tap(arg, from, to, buf, len);
}

static void test_ident_exactly_once(void **state)
{
    (void)state;
    g_ident = 1;
    g_v2 = 0;
    run_exactly_once(mfs_test_seed(61), 3000);
    g_ident = 0;
    ctx c;
    memset(&c, 0, sizeof(c));
    g_ident = 1;
    make_sim(&c, mfs_test_seed(62), 3, 1);
    g_ident = 0;
    mfs_sim_free(c.sim);
    mfs_sync_config cfg;
    cfg_default(&cfg);
    mfs_sim_hooks h = {&c, on_msg, tap_v3, NULL, NULL};
    assert_int_equal(mfs_sim_new(mfs_test_seed(63), 3, &cfg, &h, &c.sim), 0);
    assert_int_equal(mfs_sim_identities(c.sim), 0);
    mfs_sim_seed(c.sim, 1, 0);
    mfs_sim_seed(c.sim, 2, 0);
    run_until_alive(&c, 3, 10 * SEC);
    assert_true(all_alive(&c, 3));
    c.total = 20;
    c.seen = calloc(20, 1);
    for (uint32_t i = 0; i < 20; i++)
        send_one(&c, i, i % 3, (i + 1) % 3, 100 + i * 500);
    mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 2 * SEC);
    assert_int_equal(c.delivered, 20);
    assert_int_equal(g_v2, 0);
    uint64_t made, started, answered;
    mfs_sync_core_hs_counts(mfs_sim_core(c.sim, 0), &made, &started, &answered);
    printf("node 0: sessions %llu, INITs %llu, answered %llu\n",
           (unsigned long long)made, (unsigned long long)started,
           (unsigned long long)answered);
    assert_true(made >= 2);
    free(c.seen);
    mfs_sim_free(c.sim);
}

/* Sessions are replaced every rekey_ms (here 2 s) while messages flow
 * under 10% loss, and no message is lost or doubled across the
 * changes; none is older than reject_ms. */
static void test_ident_rekey(void **state)
{
    (void)state;
    ctx c;
    memset(&c, 0, sizeof(c));
    cfg_default(&g_cfg);
    g_cfg.rekey_ms = 2000;
    g_cfg.reject_ms = 3000;
    g_cfg_set = g_ident = 1;
    make_sim(&c, mfs_test_seed(64), 3, 1);
    g_cfg_set = g_ident = 0;
    mfs_sim_net net = {0.10, 0.02, 500, 5000};
    mfs_sim_set_net(c.sim, &net);
    run_until_alive(&c, 3, 10 * SEC);
    assert_true(all_alive(&c, 3));
    uint64_t made0, x, y;
    mfs_sync_core_hs_counts(mfs_sim_core(c.sim, 0), &made0, &x, &y);
    c.total = 3000;
    c.seen = calloc(c.total, 1);
    for (uint32_t i = 0; i < c.total; i++) {
        send_one(&c, i, i % 3, (i + 1 + i / 3 % 2) % 3, 50 + (i * 37) % 3000);
        mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 10000); /* 30 s in all */
    }
    mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 5 * SEC);
    unsigned missing = 0, dups = 0;
    for (unsigned i = 0; i < c.total; i++) {
        missing += c.seen[i] == 0;
        dups += c.seen[i] > 1;
    }
    uint64_t made1;
    mfs_sync_core_hs_counts(mfs_sim_core(c.sim, 0), &made1, &x, &y);
    printf("sessions made by node 0 in %.0f s: %llu; missing %u dup %u\n",
           (double)c.total / 100, (unsigned long long)(made1 - made0), missing,
           dups);
    assert_int_equal(missing, 0);
    assert_int_equal(dups, 0);
    assert_true(made1 - made0 >= 2 * 12); /* 2 peers, one per ~2.2 s */
    for (unsigned a = 0; a < 3; a++)      /* suspect for a moment at most */
        for (unsigned b = 0; b < 3; b++)
            if (a != b)
                assert_int_not_equal(mfs_sim_peer_state(c.sim, a, b),
                                     MFS_PEER_DEAD);
    free(c.seen);
    mfs_sim_free(c.sim);
}

/* A removed member is cut off at once: nothing more reaches it or comes
 * from it, its handshakes are refused, and the others go on. */
static unsigned g_told_removed;
static void told_removed(void *arg, uint64_t by)
{
    (void)arg, (void)by;
    g_told_removed++;
}

static void test_ident_removed(void **state)
{
    (void)state;
    ctx c;
    memset(&c, 0, sizeof(c));
    cfg_default(&g_cfg);
    g_cfg.on_removed = told_removed;
    g_told_removed = 0;
    g_cfg_set = g_ident = 1;
    make_sim(&c, mfs_test_seed(65), 3, 1);
    g_cfg_set = g_ident = 0;
    mfs_sim_seed(c.sim, 1, 2);
    run_until_alive(&c, 3, 10 * SEC);
    assert_true(all_alive(&c, 3));
    c.total = 40;
    c.seen = calloc(c.total, 1);
    send_one(&c, 0, 2, 0, 100);
    send_one(&c, 1, 0, 2, 100);
    mfs_sim_run(c.sim, mfs_sim_now(c.sim) + SEC);
    assert_int_equal(c.delivered, 2);
    assert_int_equal(mfs_sim_member_remove(c.sim, 0, 2), 0);
    assert_int_equal(mfs_sim_member_remove(c.sim, 1, 2), 0);
    /* node 2 keeps running with its key and sessions */
    uint64_t d0 = drops_of(mfs_sim_core(c.sim, 0), MFS_DROP_MEMBER);
    for (uint32_t i = 2; i < 20; i++) {
        mfs_sim_send(c.sim, 2, i % 2, MFS_SYNC_URGENT, (uint8_t)i, "x", 1);
        mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 100000);
    }
    assert_int_equal(mfs_sync_core_send(mfs_sim_core(c.sim, 0),
                                        mfs_sim_id(c.sim, 2), 0, 0, "x", 1),
                     -EHOSTDOWN);
    mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 20 * SEC); /* it retries */
    assert_int_equal(c.delivered, 2);
    assert_int_equal(mfs_sim_peer_state(c.sim, 0, 2), MFS_PEER_DEAD);
    assert_int_equal(mfs_sim_peer_state(c.sim, 1, 2), MFS_PEER_DEAD);
    uint64_t d1 = drops_of(mfs_sim_core(c.sim, 0), MFS_DROP_MEMBER);
    printf("refused from the removed node: %llu; it was told so %u "
           "time(s)\n",
           (unsigned long long)(d1 - d0), g_told_removed);
    assert_true(d1 > d0);
    /* its handshakes proved its key: the members told it why (REMOVED),
     * and it stopped asking (once a minute each) */
    assert_true(g_told_removed >= 1 && g_told_removed <= 2);
    /* and after a restart of the members, still */
    assert_int_equal(mfs_sim_restart(c.sim, 0), 0);
    mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 10 * SEC);
    assert_int_not_equal(mfs_sim_peer_state(c.sim, 0, 2), MFS_PEER_ALIVE);
    assert_int_equal(mfs_sim_peer_state(c.sim, 0, 1), MFS_PEER_ALIVE);
    send_one(&c, 30, 0, 1, 100);
    mfs_sim_run(c.sim, mfs_sim_now(c.sim) + SEC);
    assert_int_equal(c.seen[30], 1);
    free(c.seen);
    mfs_sim_free(c.sim);
}

/* Feeds node `to` an INIT sealed with key kp, claiming node src and boot
 * epoch, with counter, from address from. */
static void inject_init(ctx *c, unsigned to, const mfs_noise_keypair *kp,
                        uint64_t src, uint64_t epoch, uint64_t counter,
                        const mfs_addr *from)
{
    uint8_t dg[MFS_WIRE_MAX];
    mfs_noise st;
    mfs_hs_hello hello = {.counter = counter};
    mfs_wire_hdr h = {0,
                      0,
                      (uint32_t)mfs_be32_get(c->hdr + 2),
                      src,
                      mfs_sim_id(c->sim, to),
                      epoch,
                      0};
    ssize_t l = mfs_hs_init_write(&st, kp, mfs_sim_keypair(c->sim, to)->pub, &h,
                                  &hello, dg);
    assert_true(l > 0);
    mfs_sync_core_input(mfs_sim_core(c->sim, to), mfs_sim_now(c->sim), from, dg,
                        (size_t)l);
    mfs_noise_wipe(&st);
}

/* 100,000 INITs from a stranger that knows node 1's public key (so mac1
 * checks), from many ports, in one second: no state (no peer); past the
 * load threshold (200 a second) no Diffie-Hellman, only COOKIEs, each
 * smaller than the INIT it answers; the members keep exchanging
 * messages. */
static void test_ident_stranger(void **state)
{
    (void)state;
    ctx c;
    memset(&c, 0, sizeof(c));
    g_ident = 1;
    make_sim(&c, mfs_test_seed(66), 2, 1);
    g_ident = 0;
    run_until_alive(&c, 2, 10 * SEC);
    mfs_sync_core *t = mfs_sim_core(c.sim, 1);
    mfs_noise_keypair stranger;
    mfs_noise_keypair_new(&stranger);
    mfs_addr from = *mfs_sim_addr(c.sim, 0);
    ((struct sockaddr_in *)&from.ss)->sin_addr.s_addr = htonl(0x0a000063u);
    c.x = from;
    c.total = 100;
    c.seen = calloc(c.total, 1);
    size_t peers0 = mfs_sync_core_peers(t, NULL, 0);
    uint64_t n = 0;
    for (uint32_t i = 0; i < c.total; i++) {
        send_one(&c, i, 0, 1, 200);
        for (int k = 0; k < 1000; k++, n++) {
            ((struct sockaddr_in *)&from.ss)->sin_port =
                htons((uint16_t)(20000 + k));
            inject_init(&c, 1, &stranger, 0x5757 + n % 50, 1, n + 1, &from);
        }
        mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 10000);
    }
    mfs_sim_run(c.sim, mfs_sim_now(c.sim) + SEC);
    const uint64_t *g = mfs_sync_core_global_drops(t);
    uint64_t cookies = mfs_sync_core_cookies(t);
    printf("%llu INITs: rate %llu (%llu of them answered with COOKIE) "
           "member %llu; sent to it %llu bytes; delivered %llu\n",
           (unsigned long long)n, (unsigned long long)g[MFS_DROP_RATE],
           (unsigned long long)cookies, (unsigned long long)g[MFS_DROP_MEMBER],
           (unsigned long long)c.tap_bytes_to_x_ip,
           (unsigned long long)c.delivered);
    assert_int_equal(c.tap_bytes_to_x_ip, cookies * MFS_HS_COOKIE_LEN);
    assert_true(g[MFS_DROP_MEMBER] <= 200 + 5); /* the DH only under load */
    assert_int_equal(mfs_sync_core_peers(t, NULL, 0), peers0);
    assert_int_equal(g[MFS_DROP_RATE] + g[MFS_DROP_MEMBER], n);
    assert_int_equal(c.delivered, c.total);
    assert_true(all_alive(&c, 2));
    free(c.seen);
    mfs_sim_free(c.sim);
}

/* A seed's ANSWER (unauthenticated: it only names a node id) came at once,
 * but the handshake took longer than dead_ms (sync_hsflood under load:
 * node 2's INITs and the member's COOKIE round trip queued behind a flood
 * of strangers' INITs for seconds). The member was reported alive from the
 * ANSWER on, so an application that sends to alive peers queued its
 * messages then, and they were dropped when silence made the member dead
 * before any session existed: node 1 never got node 2's 300 messages. A
 * peer is alive only once it proved its key: the messages queued then
 * arrive. */
static void test_ident_answer_not_alive(void **state)
{
    (void)state;
    ctx c;
    memset(&c, 0, sizeof(c));
    g_ident = 1;
    make_sim(&c, mfs_test_seed(73), 2, 1); /* node 1 seeds node 0 */
    g_ident = 0;
    mfs_sim_net net = {0, 0, 1000, 1000}; /* 1 ms each way */
    mfs_sim_set_net(c.sim, &net);
    /* the ANSWER gets through, the handshake does not (the link is cut
     * once node 1 knows node 0's id: its INIT's RESP is lost) */
    while (mfs_sim_peer_state(c.sim, 1, 0) < 0 && mfs_sim_now(c.sim) < 5 * SEC)
        mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 100);
    assert_true(mfs_sim_peer_state(c.sim, 1, 0) >= 0);
    mfs_sim_link(c.sim, 0, 1, 0);
    uint64_t cut = mfs_sim_now(c.sim);
    assert_int_not_equal(mfs_sim_peer_state(c.sim, 1, 0), MFS_PEER_ALIVE);
    /* the application: sends once it sees node 0 alive; the link comes
     * back after more than dead_ms */
    c.total = 1;
    c.seen = calloc(1, 1);
    uint64_t sent_at = 0;
    while (mfs_sim_now(c.sim) < cut + 20 * SEC) {
        if (mfs_sim_now(c.sim) >= cut + 6 * SEC)
            mfs_sim_link(c.sim, 0, 1, 1);
        if (!sent_at && mfs_sim_peer_state(c.sim, 1, 0) == MFS_PEER_ALIVE) {
            send_one(&c, 0, 1, 0, 100);
            sent_at = mfs_sim_now(c.sim);
        }
        mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 10000);
    }
    printf("answer: node 0 alive at node 1 %.2f s after the cut (link back "
           "at 6 s), message delivered %u times\n",
           sent_at ? (double)(sent_at - cut) / 1e6 : -1.0, c.seen[0]);
    assert_true(sent_at >= cut + 6 * SEC);
    assert_int_equal(c.seen[0], 1);
    free(c.seen);
    mfs_sim_free(c.sim);
}

/* Under load (here more than 20 INITs a second), a flood of INITs with a
 * right mac1 from a spoofed member address (which bypasses the rate limit
 * for unknown addresses) costs no Diffie-Hellman: each gets a COOKIE,
 * smaller than it; a real member's INIT gets one too, and its next INIT,
 * made with the cookie, is taken: the restarted member is back at once. */
static void test_ident_cookie(void **state)
{
    (void)state;
    ctx c;
    memset(&c, 0, sizeof(c));
    cfg_default(&g_cfg);
    g_cfg.hs_load_pps = 20;
    g_cfg_set = g_ident = 1;
    make_sim(&c, mfs_test_seed(69), 2, 1);
    g_cfg_set = g_ident = 0;
    run_until_alive(&c, 2, 10 * SEC);
    assert_true(all_alive(&c, 2));
    mfs_sync_core *t = mfs_sim_core(c.sim, 1);
    mfs_noise_keypair stranger;
    mfs_noise_keypair_new(&stranger);
    const mfs_addr *member = mfs_sim_addr(c.sim, 0); /* spoofed */
    uint64_t n = 0;
    assert_int_equal(mfs_sim_restart(c.sim, 0), 0);
    uint64_t t_restart = mfs_sim_now(c.sim);
    for (int ms = 0; ms < 3000; ms++) {
        for (int k = 0; k < 10; k++, n++) /* 10,000 INITs a second */
            inject_init(&c, 1, &stranger, mfs_sim_id(c.sim, 0), 1, n + 1,
                        member);
        mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 1000);
    }
    uint64_t made, started, answered;
    mfs_sync_core_hs_counts(t, &made, &started, &answered);
    uint64_t cookies = mfs_sync_core_cookies(t);
    printf("%llu spoofed INITs: %llu COOKIEs, %llu answered; restarted "
           "member alive: %d\n",
           (unsigned long long)n, (unsigned long long)cookies,
           (unsigned long long)answered, all_alive(&c, 2));
    /* at most the first 20 a second reach the Diffie-Hellmans */
    assert_true(cookies >= n - 3 * 20 - 5);
    assert_true(all_alive(&c, 2));
    (void)t_restart;
    c.total = 1;
    c.seen = calloc(1, 1);
    send_one(&c, 0, 0, 1, 100);
    mfs_sim_run(c.sim, mfs_sim_now(c.sim) + SEC);
    assert_int_equal(c.seen[0], 1);
    free(c.seen);
    mfs_sim_free(c.sim);
}

/* A copy of node 0's store runs too: INITs that prove node 0's key come
 * from an older boot epoch than the live one, counters rising. Node 1
 * cuts both off (a replayed INIT, its counter repeated, does not). */
static void test_ident_cloned(void **state)
{
    (void)state;
    ctx c;
    memset(&c, 0, sizeof(c));
    g_ident = 1;
    make_sim(&c, mfs_test_seed(70), 2, 1);
    g_ident = 0;
    run_until_alive(&c, 2, 10 * SEC);
    mfs_addr other = *mfs_sim_addr(c.sim, 0);
    ((struct sockaddr_in *)&other.ss)->sin_addr.s_addr = htonl(0x0a000042u);
    for (unsigned k = 1; k <= 4; k++) {
        /* the first one three times: a replay, not a second daemon */
        inject_init(&c, 1, mfs_sim_keypair(c.sim, 0), mfs_sim_id(c.sim, 0), 1,
                    k < 3 ? 1 : k, &other);
        mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 100000);
        if (k < 4) /* replays, then two rising counters: not yet */
            assert_int_equal(mfs_sim_peer_state(c.sim, 1, 0), MFS_PEER_ALIVE);
    }
    /* the third rising one: both daemons are cut off, and stay so */
    mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 10 * SEC);
    assert_int_equal(mfs_sim_peer_state(c.sim, 1, 0), MFS_PEER_DEAD);
    mfs_sim_free(c.sim);
}

/* Joining: node 2's key is no member's; it joins through node 0 with the
 * right proof (admit says yes), and node 1 then learns its key (as the
 * member registry would tell it). A wrong proof is refused. */
static int g_admits;
static int admit_cb(void *arg, uint64_t id, const uint8_t pub[32],
                    const uint8_t *join, size_t len)
{
    (void)arg, (void)id, (void)pub;
    if (len != 5 || memcmp(join, "proof", 5))
        return -EACCES;
    g_admits++;
    return 0;
}

static void test_ident_join(void **state)
{
    (void)state;
    for (int good = 0; good < 2; good++) {
        ctx c;
        memset(&c, 0, sizeof(c));
        cfg_default(&g_cfg);
        g_cfg.admit = admit_cb;
        g_cfg_set = g_ident = 1;
        make_sim(&c, mfs_test_seed(67), 2, 1);
        g_cfg_set = g_ident = 0;
        run_until_alive(&c, 2, 10 * SEC);
        mfs_sim_free(c.sim);
        /* three nodes: 0 and 1 know each other; 2 knows nobody's key */
        mfs_sim_hooks h = {&c, on_msg, tap, NULL, NULL};
        assert_int_equal(mfs_sim_new(mfs_test_seed(68), 3, &g_cfg, &h, &c.sim),
                         0);
        assert_int_equal(mfs_sim_identities(c.sim), 0);
        for (unsigned a = 0; a < 3; a++)
            for (unsigned b = 0; b < 3; b++)
                if (a != b && (a == 2 || b == 2))
                    mfs_sim_member_remove(c.sim, a, b);
        mfs_sim_seed(c.sim, 1, 0);
        g_admits = 0;
        uint64_t id0 = mfs_sim_id(c.sim, 0);
        assert_int_equal(
            mfs_sync_core_join(mfs_sim_core(c.sim, 2), mfs_sim_now(c.sim), id0,
                               mfs_sim_keypair(c.sim, 0)->pub,
                               mfs_sim_addr(c.sim, 0),
                               (const uint8_t *)(good ? "proof" : "wrong"), 5),
            0);
        mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 3 * SEC);
        if (!good) {
            assert_int_equal(g_admits, 0);
            assert_int_not_equal(mfs_sim_peer_state(c.sim, 0, 2),
                                 MFS_PEER_ALIVE);
            assert_true(drops_of(mfs_sim_core(c.sim, 0), MFS_DROP_MEMBER) > 0);
            mfs_sim_free(c.sim);
            continue;
        }
        assert_true(g_admits >= 1);
        assert_int_equal(mfs_sim_peer_state(c.sim, 0, 2), MFS_PEER_ALIVE);
        assert_int_equal(mfs_sim_peer_state(c.sim, 2, 0), MFS_PEER_ALIVE);
        /* the registry reaches node 1, which tells 2 of the others */
        assert_int_equal(mfs_sync_core_member_key(
                             mfs_sim_core(c.sim, 1), mfs_sim_id(c.sim, 2),
                             mfs_sim_keypair(c.sim, 2)->pub),
                         0);
        assert_int_equal(mfs_sync_core_member_key(
                             mfs_sim_core(c.sim, 2), mfs_sim_id(c.sim, 1),
                             mfs_sim_keypair(c.sim, 1)->pub),
                         0);
        mfs_sync_core_join_done(mfs_sim_core(c.sim, 2));
        run_until_alive(&c, 3, 10 * SEC);
        assert_true(all_alive(&c, 3));
        c.total = 2;
        c.seen = calloc(2, 1);
        send_one(&c, 0, 2, 1, 3000);
        send_one(&c, 1, 1, 2, 100);
        mfs_sim_run(c.sim, mfs_sim_now(c.sim) + SEC);
        assert_int_equal(c.delivered, 2);
        free(c.seen);
        mfs_sim_free(c.sim);
    }
}

/* key of node b known to node a (NULL: b no member for a) */
static void know(ctx *c, unsigned a, unsigned b, int yes)
{
    assert_int_equal(
        mfs_sync_core_member_key(mfs_sim_core(c->sim, a), mfs_sim_id(c->sim, b),
                                 yes ? mfs_sim_keypair(c->sim, b)->pub : NULL),
        0);
}

static int alive_among(ctx *c, const unsigned *v, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        for (unsigned j = 0; j < n; j++)
            if (i != j &&
                mfs_sim_peer_state(c->sim, v[i], v[j]) != MFS_PEER_ALIVE)
                return 0;
    return 1;
}

/* Membership changes under 20% loss and a partition, with per-node keys:
 * nodes 0-3 are the mesh; node 4 joins through node 0 (a proof, as an
 * invitation) while {0,1} and {2,3} are apart; node 3 is removed (by 2
 * at once, by the others when the partition heals and the registry
 * reaches them); node 5 (node 3 joining again under a new id, as
 * `meshfs join` makes) joins through node 2. The members' views converge
 * (every live member alive to every other, none to node 3), messages
 * between every pair of them arrive exactly once, and node 3, still
 * running with its key and its old sessions, delivers nothing. */
static void churn_once(uint64_t seed)
{
    ctx c;
    memset(&c, 0, sizeof(c));
    cfg_default(&g_cfg);
    g_cfg.admit = admit_cb;
    mfs_sim_hooks h = {&c, on_msg, tap, NULL, NULL};
    assert_int_equal(mfs_sim_new(seed, 6, &g_cfg, &h, &c.sim), 0);
    assert_int_equal(mfs_sim_identities(c.sim), 0);
    for (unsigned a = 0; a < 6; a++) /* 4 and 5: nobody's keys yet */
        for (unsigned b = 0; b < 6; b++)
            if (a != b && (a >= 4 || b >= 4))
                know(&c, a, b, 0);
    for (unsigned i = 1; i < 4; i++)
        mfs_sim_seed(c.sim, i, 0);
    mfs_sim_net net = {0.20, 0.05, 1000, 20000};
    mfs_sim_set_net(c.sim, &net);
    const unsigned first[] = {0, 1, 2, 3};
    uint64_t end = mfs_sim_now(c.sim) + 30 * SEC;
    while (!alive_among(&c, first, 4) && mfs_sim_now(c.sim) < end)
        mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 100000);
    assert_true(alive_among(&c, first, 4));

    /* apart: {0,1} | {2,3}; node 4 joins through 0, node 2 removes 3 */
    for (unsigned a = 0; a < 2; a++)
        for (unsigned b = 2; b < 4; b++)
            mfs_sim_link(c.sim, a, b, 0);
    g_admits = 0;
    assert_int_equal(
        mfs_sync_core_join(mfs_sim_core(c.sim, 4), mfs_sim_now(c.sim),
                           mfs_sim_id(c.sim, 0), mfs_sim_keypair(c.sim, 0)->pub,
                           mfs_sim_addr(c.sim, 0), (const uint8_t *)"proof", 5),
        0);
    know(&c, 2, 3, 0);
    const unsigned j04[] = {0, 4}, j25[] = {2, 5};
    end = mfs_sim_now(c.sim) + 20 * SEC; /* retries through the loss */
    while (!alive_among(&c, j04, 2) && mfs_sim_now(c.sim) < end)
        mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 100000);
    assert_true(g_admits >= 1);
    assert_true(alive_among(&c, j04, 2));
    /* the registry reaches node 1 (on 0's side) */
    know(&c, 1, 4, 1);
    know(&c, 4, 1, 1);
    mfs_sync_core_join_done(mfs_sim_core(c.sim, 4));
    mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 3 * SEC);

    /* healed: the registry (4's key, 3's removal) reaches everyone */
    for (unsigned a = 0; a < 2; a++)
        for (unsigned b = 2; b < 4; b++)
            mfs_sim_link(c.sim, a, b, 1);
    for (unsigned a = 0; a < 5; a++)
        if (a != 3) {
            if (a != 4)
                know(&c, a, 4, 1), know(&c, 4, a, 1);
            know(&c, a, 3, 0);
        }
    /* node 3 again, under a new id (node 5), joining through node 2 */
    assert_int_equal(
        mfs_sync_core_join(mfs_sim_core(c.sim, 5), mfs_sim_now(c.sim),
                           mfs_sim_id(c.sim, 2), mfs_sim_keypair(c.sim, 2)->pub,
                           mfs_sim_addr(c.sim, 2), (const uint8_t *)"proof", 5),
        0);
    end = mfs_sim_now(c.sim) + 20 * SEC;
    while (!alive_among(&c, j25, 2) && mfs_sim_now(c.sim) < end)
        mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 100000);
    assert_true(alive_among(&c, j25, 2));
    for (unsigned a = 0; a < 5; a++)
        if (a != 3 && a != 2)
            know(&c, a, 5, 1), know(&c, 5, a, 1);
    mfs_sync_core_join_done(mfs_sim_core(c.sim, 5));

    const unsigned live[] = {0, 1, 2, 4, 5};
    end = mfs_sim_now(c.sim) + 60 * SEC;
    while (!alive_among(&c, live, 5) && mfs_sim_now(c.sim) < end)
        mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 100000);
    assert_true(alive_among(&c, live, 5));
    for (unsigned i = 0; i < 5; i++)
        assert_int_not_equal(mfs_sim_peer_state(c.sim, live[i], 3),
                             MFS_PEER_ALIVE);

    /* every pair of members, both ways; node 3 to each of them */
    c.total = 5 * 4 + 5;
    c.seen = calloc(c.total, 1);
    uint32_t idx = 0;
    uint64_t d0 = 0;
    for (unsigned i = 0; i < 5; i++)
        d0 += drops_of(mfs_sim_core(c.sim, live[i]), MFS_DROP_MEMBER);
    for (unsigned i = 0; i < 5; i++)
        for (unsigned j = 0; j < 5; j++)
            if (i != j) {
                send_one(&c, idx, live[i], live[j], 50 + idx * 400);
                idx++;
            }
    for (unsigned j = 0; j < 5; j++) /* it still holds old sessions */
        mfs_sim_send(c.sim, 3, live[j], MFS_SYNC_URGENT, (uint8_t)(idx + j),
                     "removed!", 8);
    mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 20 * SEC);
    uint64_t d1 = 0;
    for (unsigned i = 0; i < 5; i++)
        d1 += drops_of(mfs_sim_core(c.sim, live[i]), MFS_DROP_MEMBER);
    printf("churn seed %llu: %u admits; %llu of %u member messages "
           "delivered; %llu datagrams refused from non-members since\n",
           (unsigned long long)seed, (unsigned)g_admits, (unsigned long long)c.delivered, idx,
           (unsigned long long)(d1 - d0));
    for (uint32_t k = 0; k < idx; k++)
        assert_int_equal(c.seen[k], 1);
    for (uint32_t k = idx; k < c.total; k++)
        assert_int_equal(c.seen[k], 0); /* node 3's: none */
    assert_int_equal(c.bad, 0);
    free(c.seen);
    mfs_sim_free(c.sim);
}

/* Eight seeds (MESHFS_SEED: that one): in five of the first eight, node 5
 * used to learn of removed node 3 from a member's gossip and show it
 * alive, never heard from, for ever. */
static void test_ident_churn(void **state)
{
    (void)state;
    uint64_t one = mfs_test_seed(0);
    for (uint64_t s = one ? one : 1; s <= (one ? one : 8); s++)
        churn_once(s);
}

/* Same seed, same run. */
static void test_deterministic(void **state)
{
    uint64_t out[2][4];
    for (int r = 0; r < 2; r++) {
        ctx c;
        memset(&c, 0, sizeof(c));
        make_sim(&c, 5, 3, 1);
        mfs_sim_net net = {0.3, 0.1, 1000, 20000};
        mfs_sim_set_net(c.sim, &net);
        run_until_alive(&c, 3, 10 * SEC);
        c.total = 100;
        c.seen = calloc(100, 1);
        for (uint32_t i = 0; i < 100; i++)
            send_one(&c, i, i % 3, (i + 1) % 3, 10 + i * 300);
        mfs_sim_run(c.sim, mfs_sim_now(c.sim) + 10 * SEC);
        mfs_peer_stat st[4];
        mfs_sync_core_peers(mfs_sim_core(c.sim, 0), st, 4);
        out[r][0] = mfs_sim_now(c.sim);
        out[r][1] = st[0].bytes_out;
        out[r][2] = st[1].dgrams_in;
        out[r][3] = c.delivered;
        free(c.seen);
        mfs_sim_free(c.sim);
    }
    assert_memory_equal(out[0], out[1], sizeof(out[0]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_replay_and_forgery),
        cmocka_unit_test(test_no_amplification),
        cmocka_unit_test(test_flood_rate_limit),
        cmocka_unit_test(test_restart_epoch),
        cmocka_unit_test(test_idle_cost),
        cmocka_unit_test(test_watch_quiet_link),
        cmocka_unit_test(test_clock_offsets),
        cmocka_unit_test(test_partition_dead_then_alive),
        cmocka_unit_test(test_heal_while_quiet),
        cmocka_unit_test(test_exactly_once_many_seeds),
        cmocka_unit_test(test_ident_exactly_once),
        cmocka_unit_test(test_ident_replay_and_forgery),
        cmocka_unit_test(test_ident_no_amplification),
        cmocka_unit_test(test_ident_restart_epoch),
        cmocka_unit_test(test_ident_partition_dead_then_alive),
        cmocka_unit_test(test_ident_deterministic),
        cmocka_unit_test(test_ident_flood_rate_limit),
        cmocka_unit_test(test_ident_rekey),
        cmocka_unit_test(test_ident_removed),
        cmocka_unit_test(test_ident_stranger),
        cmocka_unit_test(test_ident_join),
        cmocka_unit_test(test_ident_cookie),
        cmocka_unit_test(test_ident_answer_not_alive),
        cmocka_unit_test(test_ident_cloned),
        cmocka_unit_test(test_ident_churn),
    };
    const char *only = getenv("MESHFS_TEST"); /* e.g. test_ident_churn */
    if (only && *only)
        cmocka_set_test_filter(only);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
