/*
 * handshake.c - what the members' handshake costs (issue 13): CPU
 * microseconds per side (initiator: INIT and reading RESP; responder:
 * reading INIT and writing RESP) over N handshakes, through the same
 * functions the transport calls (sync/hs.c, sync/noise.c), and what a
 * stranger's INIT that fails mac1 costs the responder.
 *
 * bench/wire/handshake [N]   (default 5000)
 */
#include "hs.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double cpu_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 5000;
    if (sodium_init() < 0 || n <= 0)
        return 1;
    mfs_noise_keypair si, sr;
    mfs_noise_keypair_new(&si);
    mfs_noise_keypair_new(&sr);
    uint8_t mac_r[32], mac_i[32];
    mfs_hs_mac1_key(sr.pub, mac_r);
    mfs_hs_mac1_key(si.pub, mac_i);
    double t_init = 0, t_resp = 0, t_bad = 0;
    uint8_t dg1[MFS_WIRE_MAX], dg2[MFS_WIRE_MAX], tx[32], rx[32];
    for (int k = 0; k < n; k++) {
        mfs_noise a, b;
        mfs_hs_hello hello = {.counter = (uint64_t)k + 1}, got;
        mfs_wire_hdr h = {MFS_WIRE_VERSION_ID, 0, 7, 1, 2, 1, 0};
        mfs_wire_hdr rh = {MFS_WIRE_VERSION_ID, 0, 7, 2, 1, 1, 0};
        uint64_t wall;
        double t0 = cpu_us();
        ssize_t l1 = mfs_hs_init_write(&a, &si, sr.pub, &h, &hello, dg1);
        double t1 = cpu_us();
        int r1 = mfs_hs_init_read(&b, &sr, mac_r, dg1, (size_t)l1, &got);
        ssize_t l2 = mfs_hs_resp_write(&b, &rh, 123, dg2);
        int r2 = mfs_noise_split(&b, tx, rx, NULL);
        double t2 = cpu_us();
        int r3 = mfs_hs_resp_read(&a, mac_i, &rh, dg2, (size_t)l2, &wall);
        int r4 = mfs_noise_split(&a, tx, rx, NULL);
        double t3 = cpu_us();
        dg1[MFS_WIRE_HDR] ^= 1; /* a stranger's: mac1 fails */
        int r5 = mfs_hs_init_read(&b, &sr, mac_r, dg1, (size_t)l1, &got);
        double t4 = cpu_us();
        if (l1 < 0 || r1 || l2 < 0 || r2 || r3 || r4 || !r5) {
            fprintf(stderr, "handshake %d failed\n", k);
            return 1;
        }
        t_init += (t1 - t0) + (t3 - t2);
        t_resp += t2 - t1;
        t_bad += t4 - t3;
    }
    printf("handshakes %d: initiator %.1f us CPU each, responder %.1f us; "
           "an INIT failing mac1 %.2f us\n",
           n, t_init / n, t_resp / n, t_bad / n);
    return 0;
}
