/*
 * test_node_clock.c - the mesh's time as a node picks it from the clocks it
 * knows (node/clock.c mfs_node_clock_pick, docs/REPLICATION.md "Clocks"):
 * the lower median, own clock included; slow clocks (behind their own
 * stores' stamps) left out while another is known; clocks their kernels
 * say are synchronized preferred. Each case says which node is wrong and
 * checks that it, not the right one, is the one the pick corrects.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "node.h"
#include "wire.h"

#define MIN 60000000ll /* us */
#define DAY 86400000000ll

/* The offset (the mesh's time minus ours) node `self` of n would take,
 * node i's clock being at clocks[i] (us) with flags[i]; ours is clocks[self].
 */
static int64_t pick_from(const int64_t *clocks, const uint8_t *flags, size_t n,
                         size_t self)
{
    mfs_clock_cand c[16];
    for (size_t i = 0; i < n; i++)
        c[i] = (mfs_clock_cand){clocks[i] - clocks[self], 100, flags[i]};
    const mfs_clock_cand *m = mfs_node_clock_pick(c, n);
    assert_non_null(m);
    return m->off_us;
}

/* Two nodes: B 10 minutes or a day ahead. A stays, B is set back. */
static void test_two_ahead(void **state)
{
    (void)state;
    const int64_t ahead[] = {10 * MIN, DAY};
    for (size_t k = 0; k < 2; k++) {
        int64_t clocks[2] = {0, ahead[k]};
        uint8_t flags[2] = {0, 0};
        assert_true(pick_from(clocks, flags, 2, 0) == 0);
        assert_true(pick_from(clocks, flags, 2, 1) == -ahead[k]);
    }
}

/* Two nodes, B a day behind: its clock is behind its own store's stamps
 * (BEHIND), so it is left out: B is set forward, A stays. Without the
 * flag the earlier clock would win, and A would be set back a day. */
static void test_two_behind_flagged(void **state)
{
    (void)state;
    int64_t clocks[2] = {0, -DAY};
    uint8_t flags[2] = {0, MFS_CLOCK_BEHIND};
    assert_true(pick_from(clocks, flags, 2, 0) == 0);
    assert_true(pick_from(clocks, flags, 2, 1) == DAY);
    flags[1] = 0;
    assert_true(pick_from(clocks, flags, 2, 0) == -DAY); /* (the rule) */
}

/* A clock its kernel says is synchronized wins over one that is not,
 * whichever is earlier: B 30 s behind but not flagged slow (within the
 * bound), A synchronized: A stays, B is set forward. */
static void test_synced_preferred(void **state)
{
    (void)state;
    int64_t clocks[2] = {0, -30000000};
    uint8_t flags[2] = {MFS_CLOCK_SYNCED, 0};
    assert_true(pick_from(clocks, flags, 2, 0) == 0);
    assert_true(pick_from(clocks, flags, 2, 1) == 30000000);
    /* every clock slow: they are all there is */
    uint8_t slow[2] = {MFS_CLOCK_BEHIND, MFS_CLOCK_BEHIND};
    assert_true(pick_from(clocks, slow, 2, 0) == -30000000);
}

/* Five nodes, two of them off (a year ahead, a month behind unflagged):
 * the median is one of the three that agree, for every node. */
static void test_five_median(void **state)
{
    (void)state;
    int64_t clocks[5] = {0, 2000, -1500, 365 * DAY, -30 * DAY};
    uint8_t flags[5] = {0};
    for (size_t self = 0; self < 5; self++) {
        int64_t mesh = clocks[self] + pick_from(clocks, flags, 5, self);
        assert_true(mesh == 0); /* the median of the five */
    }
    /* the one a month behind flags itself: four left, the lower median
     * of them is still one of the three */
    flags[4] = MFS_CLOCK_BEHIND;
    for (size_t self = 0; self < 5; self++) {
        int64_t mesh = clocks[self] + pick_from(clocks, flags, 5, self);
        assert_true(mesh == 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_ahead),
        cmocka_unit_test(test_two_behind_flagged),
        cmocka_unit_test(test_synced_preferred),
        cmocka_unit_test(test_five_median),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
