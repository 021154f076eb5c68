/*
 * rtt.h - round-trip time estimator after RFC 9002 section 5 (smoothed RTT,
 * RTT variance, minimum RTT, ack delay subtracted when plausible), and the
 * probe timeout derived from it. Microseconds throughout. Pure.
 */
#ifndef MFS_SYNC_RTT_H
#define MFS_SYNC_RTT_H

#include <stdint.h>

typedef struct mfs_rtt {
    uint64_t latest, smoothed, var, min;
    int has; /* 0 until the first sample */
} mfs_rtt;

/* initial_us is used as smoothed RTT until the first sample. */
void mfs_rtt_init(mfs_rtt *r, uint64_t initial_us);
/* One sample: time from sending the largest newly acked packet to its ack,
 * and the peer's reported ack delay (capped at max_ack_delay_us). */
void mfs_rtt_sample(mfs_rtt *r, uint64_t sample_us, uint64_t ack_delay_us,
                    uint64_t max_ack_delay_us);
/* Probe timeout: smoothed + max(4 var, granularity) + max_ack_delay. */
uint64_t mfs_rtt_pto(const mfs_rtt *r, uint64_t max_ack_delay_us,
                     uint64_t granularity_us);

#endif
