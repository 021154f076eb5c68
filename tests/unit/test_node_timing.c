/*
 * test_node_timing.c - the transport with the timings a node runs with
 * (mfs_node_sync_config), under the deterministic simulator as node/
 * makes it for a node (mfs_simnet_sim_new), the transport alone: a quiet
 * mesh costs at most 20 bytes/s per peer and never suspects a live peer;
 * a peer we send to and that is gone is found out as fast as on a busy
 * link; a quiet peer that is gone is found out within the quiet bounds.
 * MESHFS_SEED=N replays one seed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "node.h"
#include "sim.h"
#include "simnet.h"
#include "testutil.h"

#define N 5
#define SEC 1000000ull

static void on_msg(void *arg, unsigned node, uint64_t from, uint8_t mtype,
                   const uint8_t *d, size_t len)
{
    (*(uint64_t *)arg)++;
}

static mfs_sim *make(uint64_t seed, uint64_t *delivered)
{
    mfs_sim_hooks h = {delivered, on_msg, NULL, NULL, NULL};
    mfs_sim *sim = NULL;
    assert_int_equal(mfs_simnet_sim_new(seed, N, &h, &sim), 0);
    for (unsigned i = 1; i < N; i++)
        assert_int_equal(mfs_sim_seed(sim, i, 0), 0);
    /* everyone alive */
    uint64_t end = mfs_sim_now(sim) + 30 * SEC;
    for (;;) {
        int all = 1;
        for (unsigned a = 0; a < N; a++)
            for (unsigned b = 0; b < N; b++)
                all &= a == b ||
                       mfs_sim_peer_state(sim, a, b) == MFS_PEER_ALIVE;
        if (all)
            break;
        assert_true(mfs_sim_now(sim) < end);
        mfs_sim_run(sim, mfs_sim_now(sim) + 100000);
    }
    return sim;
}

/* Runs until `until`, checking every 100 ms that every pair is alive. */
static void run_all_alive(mfs_sim *sim, uint64_t until)
{
    while (mfs_sim_now(sim) < until) {
        mfs_sim_run(sim, mfs_sim_now(sim) + 100000);
        for (unsigned a = 0; a < N; a++)
            for (unsigned b = 0; b < N; b++)
                if (a != b)
                    assert_int_equal(mfs_sim_peer_state(sim, a, b),
                                     MFS_PEER_ALIVE);
    }
}

/* Ten quiet minutes: at most 20 bytes/s to each peer (the issue's
 * target; 90-byte heartbeats every 1.25 s cost 72), nobody suspected;
 * a message wakes the link and arrives. */
static void test_quiet_cost(void **state)
{
    uint64_t seed = mfs_test_seed(11), delivered = 0;
    printf("seed %llu\n", (unsigned long long)seed);
    mfs_sim *sim = make(seed, &delivered);
    mfs_sim_net net = {0, 0, 200, 2000};
    mfs_sim_set_net(sim, &net);
    run_all_alive(sim, mfs_sim_now(sim) + 30 * SEC);
    mfs_peer_stat a[N], b[N];
    size_t n = mfs_sync_core_peers(mfs_sim_core(sim, 2), a, N);
    run_all_alive(sim, mfs_sim_now(sim) + 600 * SEC);
    mfs_sync_core_peers(mfs_sim_core(sim, 2), b, N);
    for (size_t k = 0; k < n; k++) {
        double bps = (double)(b[k].bytes_out - a[k].bytes_out) / 600.0;
        printf("quiet: %.1f bytes/s to peer %zu\n", bps, k);
        assert_true(bps <= 20);
        assert_true(bps > 0);
    }
    assert_int_equal(mfs_sim_send(sim, 2, 3, MFS_SYNC_URGENT, 7, "hello", 5),
                     0);
    mfs_sim_run(sim, mfs_sim_now(sim) + 100000);
    assert_int_equal(delivered, 1);
    mfs_sim_free(sim);
}

/* After a quiet minute node 4 is cut off. Node 0 sends it a message: 0
 * suspects it within 3.5 s and counts it dead within 5.6 s, as on a busy
 * link. Node 1, which says nothing to it, counts it dead only after the
 * quiet bound (41 s of silence), and not much later. */
static void test_gone_peer(void **state)
{
    uint64_t seed = mfs_test_seed(12), delivered = 0;
    printf("seed %llu\n", (unsigned long long)seed);
    mfs_sim *sim = make(seed, &delivered);
    run_all_alive(sim, mfs_sim_now(sim) + 60 * SEC);
    mfs_sim_isolate(sim, 4, 1);
    uint64_t cut = mfs_sim_now(sim);
    assert_int_equal(mfs_sim_send(sim, 0, 4, MFS_SYNC_URGENT, 7, "hello", 5),
                     0);
    mfs_sim_run(sim, cut + 3500000);
    assert_int_not_equal(mfs_sim_peer_state(sim, 0, 4), MFS_PEER_ALIVE);
    mfs_sim_run(sim, cut + 5600000);
    assert_int_equal(mfs_sim_peer_state(sim, 0, 4), MFS_PEER_DEAD);
    assert_int_equal(mfs_sim_peer_state(sim, 1, 4), MFS_PEER_ALIVE);
    uint64_t dead_at = 0;
    while (!dead_at && mfs_sim_now(sim) < cut + 60 * SEC) {
        mfs_sim_run(sim, mfs_sim_now(sim) + 100000);
        if (mfs_sim_peer_state(sim, 1, 4) == MFS_PEER_DEAD)
            dead_at = mfs_sim_now(sim);
    }
    printf("quiet peer dead after %.1f s\n", (double)(dead_at - cut) / SEC);
    assert_true(dead_at > cut + 41 * SEC - 12 * SEC); /* its last heartbeat
                                                         came before the cut */
    assert_true(dead_at <= cut + 42 * SEC);
    /* the others among themselves: alive */
    for (unsigned a = 0; a < 4; a++)
        for (unsigned b = 0; b < 4; b++)
            if (a != b)
                assert_int_equal(mfs_sim_peer_state(sim, a, b),
                                 MFS_PEER_ALIVE);
    mfs_sim_free(sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quiet_cost),
        cmocka_unit_test(test_gone_peer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
