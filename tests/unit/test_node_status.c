/*
 * test_node_status.c - the control protocol's mesh lines (node/status.c):
 * what the daemon writes the command reads back whole, a line of a daemon
 * one version older or newer is still read, a damaged one is refused;
 * and the "in sync" rule.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "status.h"

static void test_peer_round_trip(void **state)
{
    mfs_status_peer p = {.id = 0x0123456789abcdefull,
                         .rtt_us = 1234,
                         .loss_out = 0.25,
                         .loss_in = 0.125,
                         .last_ms = 77,
                         .heard = 1,
                         .ops_they = 5,
                         .bytes_they = 6,
                         .ops_we = 7,
                         .bytes_we = 8,
                         .skew_ms = -600000,
                         .chunks_they = 9,
                         .wait_max_us = 10,
                         .bytes_in = 11,
                         .bytes_out = 12,
                         .ops_sent = 13,
                         .ops_recv = 14,
                         .chunks_sent = 15,
                         .chunks_recv = 16,
                         .retransmits = 17,
                         .dropped = 18};
    strcpy(p.addr, "[::1]:7410");
    strcpy(p.state, "suspect");
    char line[MFS_STATUS_LINE_MAX];
    mfs_status_peer_format(&p, line, sizeof line);
    mfs_status_peer q;
    assert_int_equal(mfs_status_peer_parse(line, &q), 0);
    assert_memory_equal(&p, &q, sizeof p);
    /* an older daemon: no chunk count, no wait */
    assert_int_equal(mfs_status_peer_parse("00000000000000aa 10.0.0.1:7410 "
                                           "alive 100 0.0000 0.0000 5 1 0 0 "
                                           "0 0 3",
                                           &q),
                     0);
    assert_int_equal(q.id, 0xaa);
    assert_int_equal(q.skew_ms, 3);
    assert_int_equal(q.chunks_they, 0);
    /* a newer one: a field more */
    strcat(line, " 42");
    assert_int_equal(mfs_status_peer_parse(line, &q), 0);
    assert_int_equal(q.wait_max_us, 10);
    /* damaged */
    assert_int_equal(mfs_status_peer_parse("zz 10.0.0.1:7410 alive", &q),
                     -EINVAL);
    assert_int_equal(q.id, 0);
    assert_int_equal(mfs_status_peer_parse("", &q), -EINVAL);
}

/* `meshfs sync` waits (issue 15's live view and page show them) */
static void test_syncjob(void **state)
{
    (void)state;
    mfs_status_syncjob j = {.seq = 77,
                            .have = 1,
                            .want = 3,
                            .elapsed_ms = 2000,
                            .timeout_ms = 60000},
                       k;
    char line[MFS_STATUS_LINE_MAX];
    mfs_status_syncjob_format(&j, line, sizeof line);
    assert_string_equal(line, "77 1 3 2000 60000");
    assert_int_equal(mfs_status_syncjob_parse(line, &k), 0);
    assert_int_equal(k.seq, 77);
    assert_int_equal(k.have, 1);
    assert_int_equal(k.want, 3);
    assert_int_equal(k.elapsed_ms, 2000);
    assert_int_equal(k.timeout_ms, 60000);
    assert_int_equal(mfs_status_syncjob_parse("77 1 3 2000 60000 9", &k), 0);
    assert_int_equal(mfs_status_syncjob_parse("77 1 x", &k), -EINVAL);
    assert_int_equal(k.seq, 0);
}

/* open invitations that `meshfs members` lists (issue 10) */
static void test_invited(void **state)
{
    (void)state;
    mfs_status_invited v = {.id = 0xff,
                            .by = 0xa1b2c3d4e5f60718ull,
                            .created = 1700000000,
                            .expires = 1700086400,
                            .uses = 2},
                       w;
    char line[MFS_STATUS_LINE_MAX];
    mfs_status_invited_format(&v, line, sizeof line);
    assert_string_equal(line, "00000000000000ff a1b2c3d4e5f60718 1700000000 "
                              "1700086400 2");
    assert_int_equal(mfs_status_invited_parse(line, &w), 0);
    assert_int_equal(w.id, v.id);
    assert_int_equal(w.by, v.by);
    assert_int_equal(w.created, v.created);
    assert_int_equal(w.expires, v.expires);
    assert_int_equal(w.uses, v.uses);
    /* a newer daemon's extra field is ignored; a short line is refused */
    assert_int_equal(mfs_status_invited_parse("ff 1 2 3 4 5", &w), 0);
    assert_int_equal(w.uses, 4);
    assert_int_equal(mfs_status_invited_parse("ff 1 2 3", &w), -EINVAL);
    assert_int_equal(w.id, 0);
}

static void test_catchup_snapshot(void **state)
{
    mfs_status_catchup c = {1, 2, 3, 4, 5.5, 6.5, -1}, d;
    char line[MFS_STATUS_LINE_MAX];
    mfs_status_catchup_format(&c, line, sizeof line);
    assert_int_equal(mfs_status_catchup_parse(line, &d), 0);
    /* field by field: the struct has padding, which a byte compare reads
     * (it failed in Debug builds) */
    assert_int_equal(d.active, c.active);
    assert_int_equal(d.ops, c.ops);
    assert_int_equal(d.chunks, c.chunks);
    assert_int_equal(d.bytes, c.bytes);
    assert_true(d.ops_per_s == c.ops_per_s);
    assert_true(d.bytes_per_s == c.bytes_per_s);
    assert_int_equal(d.eta_ms, c.eta_ms);
    assert_int_equal(mfs_status_catchup_parse("1 2 3", &d), -EINVAL);

    mfs_status_snap s = {1, 0, 0xfeedull, 10, 20, 3, 4}, t;
    mfs_status_snap_format(&s, line, sizeof line);
    assert_int_equal(mfs_status_snap_parse(line, &t), 0);
    assert_int_equal(t.active, s.active);
    assert_int_equal(t.refused, s.refused);
    assert_int_equal(t.from, s.from);
    assert_int_equal(t.done, s.done);
    assert_int_equal(t.total, s.total);
    assert_int_equal(t.installed, s.installed);
    assert_int_equal(t.served, s.served);
    assert_int_equal(mfs_status_snap_parse("x", &t), -EINVAL);
}

static void test_in_sync_rule(void **state)
{
    assert_true(mfs_status_in_sync(1, 0, 0, 0));
    assert_false(mfs_status_in_sync(0, 0, 0, 0)); /* replication owes */
    assert_false(mfs_status_in_sync(1, 1, 0, 0)); /* a live peer unheard */
    assert_false(mfs_status_in_sync(1, 0, 2, 0)); /* unpublished writes */
    assert_false(mfs_status_in_sync(1, 0, 0, 1)); /* removed */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peer_round_trip),
        cmocka_unit_test(test_catchup_snapshot),
        cmocka_unit_test(test_syncjob),
        cmocka_unit_test(test_invited),
        cmocka_unit_test(test_in_sync_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
