/*
 * test_sync_wire.c - unit tests of the sync building blocks: datagram
 * header and sealing, frame codec (every truncation rejected), replay
 * window, RTT estimator, fragmentation geometry, mesh key files and
 * invite tokens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mesh.h"
#include "replay.h"
#include "rtt.h"
#include "testutil.h"
#include "wire.h"

static const uint8_t KEY[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9};

static size_t build_payload(uint8_t *pt, const uint8_t *msg, uint16_t mlen)
{
    mfs_wbuf w;
    uint64_t lo[3] = {90, 50, 10}, hi[3] = {100, 80, 20};
    mfs_member_entry e[2] = {{7, 4, {127, 0, 0, 1}, 7000},
                             {8, 6, {0xfe, 0x80}, 7001}};
    mfs_wbuf_init(&w, pt, MFS_WIRE_PAYLOAD_MAX);
    mfs_wire_put_ack(&w, 1234, lo, hi, 3);
    mfs_wire_put_hb(&w, 11, 22, 33, 44, 1765000000123456ull, MFS_CLOCK_BEHIND);
    mfs_wire_put_data(&w, 9, 5, 3, 2500, 2400, msg, mlen);
    mfs_wire_put_members(&w, e, 2);
    assert_int_equal(w.err, 0);
    return w.len;
}

static void test_frames_roundtrip(void **state)
{
    uint8_t pt[MFS_WIRE_PAYLOAD_MAX], msg[100];
    mfs_frame fr[8];
    memset(msg, 0xab, sizeof(msg));
    size_t len = build_payload(pt, msg, 100);
    int n = mfs_wire_frames_parse(pt, len, 1 << 20, fr, 8);
    assert_int_equal(n, 4);
    assert_int_equal(fr[0].type, MFS_FR_ACK);
    assert_int_equal(fr[0].u.ack.largest, 100);
    assert_int_equal(fr[0].u.ack.nranges, 3);
    assert_int_equal(fr[0].u.ack.lo[1], 50);
    assert_int_equal(fr[0].u.ack.hi[2], 20);
    assert_int_equal(fr[0].u.ack.lo[2], 10);
    assert_int_equal(fr[1].u.hb.hold_us, 33);
    assert_true(fr[1].u.hb.wall_us == 1765000000123456ull);
    assert_int_equal(fr[1].u.hb.clock, MFS_CLOCK_BEHIND);
    assert_int_equal(fr[2].u.data.msg_id, 5);
    assert_int_equal(fr[2].u.data.offset, 2400);
    assert_int_equal(fr[2].u.data.len, 100);
    assert_memory_equal(fr[2].u.data.bytes, msg, 100);
    assert_int_equal(fr[3].u.members.count, 2);
    assert_int_equal(fr[3].u.members.e[1].port, 7001);
    /* every truncation is rejected, except cuts at a frame boundary,
     * which leave fewer whole frames */
    int whole = 0;
    for (size_t l = 1; l < len; l++) {
        int r = mfs_wire_frames_parse(pt, l, 1 << 20, fr, 8);
        assert_true(r < 4);
        whole += r >= 0;
    }
    assert_int_equal(whole, 3);
    /* message over the cap, bad fragment geometry, base above id */
    assert_true(mfs_wire_frames_parse(pt, len, 2000, fr, 8) < 0);
    mfs_wbuf w;
    mfs_wbuf_init(&w, pt, sizeof(pt));
    mfs_wire_put_data(&w, 1, 5, 3, 2500, 100, msg, 100);
    assert_true(mfs_wire_frames_parse(pt, w.len, 1 << 20, fr, 8) < 0);
    mfs_wbuf_init(&w, pt, sizeof(pt));
    mfs_wire_put_data(&w, 1, 5, 6, 100, 0, msg, 100);
    assert_true(mfs_wire_frames_parse(pt, w.len, 1 << 20, fr, 8) < 0);
    /* unknown frame type, non-zero padding */
    pt[0] = 77;
    assert_true(mfs_wire_frames_parse(pt, 10, 1 << 20, fr, 8) < 0);
    memset(pt, 0, 10);
    assert_int_equal(mfs_wire_frames_parse(pt, 10, 1 << 20, fr, 8), 0);
    pt[5] = 1;
    assert_true(mfs_wire_frames_parse(pt, 10, 1 << 20, fr, 8) < 0);
}

static void test_seal_open(void **state)
{
    uint8_t pt[MFS_WIRE_PAYLOAD_MAX], dg[MFS_WIRE_MAX],
        out[MFS_WIRE_PAYLOAD_MAX];
    uint8_t msg[1200] = {0};
    size_t len = build_payload(pt, msg, 100);
    mfs_wire_hdr h = {MFS_WIRE_VERSION, 0, 0xabcd, 1, 2, 3, 4}, h2;
    int n = mfs_wire_seal(KEY, &h, pt, len, dg);
    assert_int_equal(n, (int)(MFS_WIRE_HDR + len + MFS_WIRE_TAG));
    assert_int_equal(mfs_wire_hdr_decode(dg, (size_t)n, &h2), 0);
    assert_memory_equal(&h, &h2, sizeof(h)); /* fields only, no padding */
    assert_int_equal(mfs_wire_open(KEY, dg, (size_t)n, out), (int)len);
    assert_memory_equal(out, pt, len);
    /* every single-bit flip, in header or body, fails authentication */
    for (int i = 0; i < n; i++) {
        dg[i] ^= 0x10;
        assert_int_equal(mfs_wire_open(KEY, dg, (size_t)n, out), -EBADMSG);
        dg[i] ^= 0x10;
    }
    uint8_t k2[32] = {9};
    assert_int_equal(mfs_wire_open(k2, dg, (size_t)n, out), -EBADMSG);
    assert_int_equal(mfs_wire_open(KEY, dg, (size_t)n - 1, out), -EBADMSG);
    assert_int_equal(mfs_wire_hdr_decode(dg, 20, &h2), -EBADMSG);
    assert_int_equal(mfs_wire_hdr_decode(dg, MFS_WIRE_MAX + 1, &h2), -EBADMSG);
    dg[1] = 1; /* version 2: no flags */
    assert_int_equal(mfs_wire_hdr_decode(dg, (size_t)n, &h2), -EPROTO);
    dg[0] = MFS_WIRE_VERSION_ID; /* version 3: a known kind */
    for (int k = 0; k < 256; k++) {
        dg[1] = (uint8_t)k;
        int want = k <= MFS_WIRE_KIND_MAX ? 0 : -EPROTO;
        assert_int_equal(mfs_wire_hdr_decode(dg, (size_t)n, &h2), want);
    }
    dg[1] = 0;
    dg[0] = MFS_WIRE_VERSION_ID + 1;
    assert_int_equal(mfs_wire_hdr_decode(dg, (size_t)n, &h2), -EPROTO);
    /* payload too large for one datagram */
    assert_int_equal(mfs_wire_seal(KEY, &h, pt, MFS_WIRE_PAYLOAD_MAX + 1, dg),
                     -EMSGSIZE);
    /* a full DATA frame plus piggybacked ack and heartbeat fits */
    assert_true(MFS_WIRE_DATA_HDR + MFS_WIRE_FRAG + 26 + 18 + 7 * 8 <=
                MFS_WIRE_PAYLOAD_MAX);
}

static void test_replay_window(void **state)
{
    mfs_replay w;
    mfs_replay_init(&w);
    assert_int_equal(mfs_replay_check(&w, 5), 0);
    mfs_replay_commit(&w, 5);
    assert_int_equal(mfs_replay_check(&w, 5), -EALREADY);
    assert_int_equal(mfs_replay_check(&w, 4), 0); /* reordered: fresh */
    mfs_replay_commit(&w, 4);
    assert_int_equal(mfs_replay_check(&w, 4), -EALREADY);
    mfs_replay_commit(&w, 5000);
    assert_int_equal(mfs_replay_check(&w, 5), -ERANGE);
    assert_int_equal(mfs_replay_check(&w, 5000 - MFS_REPLAY_BITS + 1), 0);
    assert_int_equal(mfs_replay_check(&w, 5000 - MFS_REPLAY_BITS), -ERANGE);
    assert_int_equal(mfs_replay_check(&w, 4999), 0);
    /* random order within the window: each accepted exactly once */
    mfs_rng r;
    mfs_rng_seed(&r, mfs_test_seed(3));
    mfs_replay_init(&w);
    static uint8_t seen[20000];
    memset(seen, 0, sizeof(seen));
    uint64_t top = 0;
    for (int i = 0; i < 100000; i++) {
        uint64_t pn = top + 200 > 19999 ? mfs_rng_below(&r, 20000)
                                        : mfs_rng_below(&r, top + 200);
        int rc = mfs_replay_check(&w, pn);
        if (rc == 0) {
            assert_int_equal(seen[pn], 0);
            seen[pn] = 1;
            mfs_replay_commit(&w, pn);
            if (pn > top)
                top = pn;
        } else if (rc == -EALREADY) {
            assert_int_equal(seen[pn], 1);
        } else {
            assert_true(top - pn >= MFS_REPLAY_BITS);
        }
    }
}

static void test_rtt(void **state)
{
    mfs_rtt r;
    mfs_rtt_init(&r, 100000);
    assert_int_equal(mfs_rtt_pto(&r, 0, 1000), 100000 + 200000);
    mfs_rtt_sample(&r, 10000, 0, 2000);
    assert_int_equal(r.smoothed, 10000);
    assert_int_equal(r.min, 10000);
    for (int i = 0; i < 50; i++)
        mfs_rtt_sample(&r, 20000, 5000, 2000); /* ack delay capped */
    assert_true(r.smoothed > 17500 && r.smoothed <= 18000);
    assert_int_equal(r.min, 10000);
    mfs_rtt_sample(&r, 10500, 5000, 5000); /* delay not below min */
    assert_int_equal(r.latest, 10500);
    uint64_t pto = mfs_rtt_pto(&r, 2000, 1000);
    assert_true(pto >= r.smoothed + 2000 + 1000);
    /* random loss does not inflate the estimate: samples stay samples */
    for (int i = 0; i < 100; i++)
        mfs_rtt_sample(&r, 10000, 0, 2000);
    assert_true(r.smoothed < 10100);
}

static void test_mesh_key_and_invite(void **state)
{
    char *d = mfs_test_mkdtemp("synckey");
    struct mfs_mesh_key k, k2;
    char tok[MFS_INVITE_MAX], hp[80], path[512];
    struct stat st;

    assert_int_equal(mfs_mesh_key_load(d, &k), -ENOENT);
    assert_int_equal(mfs_mesh_key_create(d), 0);
    assert_int_equal(mfs_mesh_key_create(d), -EEXIST);
    snprintf(path, sizeof(path), "%s/mesh.key", d);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(mfs_mesh_key_load(d, &k), 0);

    int n = mfs_invite_format(&k, "10.1.2.3:7000", tok, sizeof(tok));
    assert_true(n > 0 && (size_t)n < sizeof(tok));
    assert_non_null(strstr(tok, "mfs1."));
    assert_null(strchr(tok, '\n'));
    assert_int_equal(mfs_invite_parse(tok, &k2, hp, sizeof(hp)), 0);
    assert_memory_equal(&k, &k2, sizeof(k));
    assert_string_equal(hp, "10.1.2.3:7000");
    assert_int_equal(mfs_invite_format(&k, "x", tok, 10), -ENOBUFS);
    assert_int_equal(mfs_invite_format(&k, "", tok, sizeof(tok)), -EINVAL);

    /* join: write into a fresh store dir; then mode and content match */
    char *d2 = mfs_test_mkdtemp("syncjoin");
    assert_int_equal(mfs_mesh_key_write(d2, &k2), 0);
    assert_int_equal(mfs_mesh_key_load(d2, &k), 0);
    assert_memory_equal(&k, &k2, sizeof(k));
    assert_int_equal(mfs_mesh_key_write(d2, &k2), -EEXIST);

    /* every damaged token is refused and writes nothing */
    n = mfs_invite_format(&k, "10.1.2.3:7000", tok, sizeof(tok));
    for (int i = 0; i < n; i++) {
        char bad[MFS_INVITE_MAX];
        strcpy(bad, tok);
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        struct mfs_mesh_key z;
        memset(&z, 0x5a, sizeof(z));
        char zh[8] = "unset";
        assert_int_equal(mfs_invite_parse(bad, &z, zh, sizeof(zh)), -EINVAL);
        assert_string_equal(zh, "unset");
        for (size_t b = 0; b < sizeof(z); b++)
            assert_int_equal(((uint8_t *)&z)[b], 0x5a);
        bad[i] = 0; /* truncated */
        assert_int_equal(mfs_invite_parse(bad, &z, hp, sizeof(hp)), -EINVAL);
    }
    assert_int_equal(mfs_invite_parse(tok, &k2, hp, 5), -EINVAL); /* cap */
    assert_int_equal(mfs_invite_parse("garbage", &k2, hp, sizeof(hp)), -EINVAL);

    /* a key readable by others is refused; a short file is not a key */
    chmod(path, 0644);
    assert_int_equal(mfs_mesh_key_load(d, &k), -EPERM);
    chmod(path, 0600);
    assert_int_equal(truncate(path, 10), 0);
    assert_int_equal(mfs_mesh_key_load(d, &k), -EBADMSG);

    unsigned alen;
    struct sockaddr_storage ss;
    assert_int_equal(mfs_mesh_addr_parse("127.0.0.1:7000", &ss, &alen), 0);
    assert_int_equal(mfs_mesh_addr_parse("[::1]:7000", &ss, &alen), 0);
    assert_int_equal(mfs_mesh_addr_parse("127.0.0.1", &ss, &alen), -EINVAL);
    assert_int_equal(mfs_mesh_addr_parse("host:70000", &ss, &alen), -EINVAL);
    assert_int_equal(mfs_mesh_addr_parse("1.2.3.4:x", &ss, &alen), -EINVAL);
    mfs_test_rmdir(d);
    mfs_test_rmdir(d2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames_roundtrip),
        cmocka_unit_test(test_seal_open),
        cmocka_unit_test(test_replay_window),
        cmocka_unit_test(test_rtt),
        cmocka_unit_test(test_mesh_key_and_invite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
