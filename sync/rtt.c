/*
 * rtt.c - RTT estimator (see rtt.h). Must never let one late ack inflate
 * the minimum, nor an ack delay push a sample below the minimum.
 */
#include "rtt.h"

void mfs_rtt_init(mfs_rtt *r, uint64_t initial_us)
{
    r->latest = initial_us;
    r->smoothed = initial_us;
    r->var = initial_us / 2;
    r->min = 0;
    r->has = 0;
}

void mfs_rtt_sample(mfs_rtt *r, uint64_t sample_us, uint64_t ack_delay_us,
                    uint64_t max_ack_delay_us)
{
    if (sample_us == 0)
        sample_us = 1;
    r->latest = sample_us;
    if (!r->has) {
        r->has = 1;
        r->min = sample_us;
        r->smoothed = sample_us;
        r->var = sample_us / 2;
        return;
    }
    if (sample_us < r->min)
        r->min = sample_us;
    if (ack_delay_us > max_ack_delay_us)
        ack_delay_us = max_ack_delay_us;
    uint64_t adj = sample_us;
    if (adj >= r->min + ack_delay_us)
        adj -= ack_delay_us;
    uint64_t diff = r->smoothed > adj ? r->smoothed - adj : adj - r->smoothed;
    r->var = (3 * r->var + diff) / 4;
    r->smoothed = (7 * r->smoothed + adj) / 8;
}

uint64_t mfs_rtt_pto(const mfs_rtt *r, uint64_t max_ack_delay_us,
                     uint64_t granularity_us)
{
    uint64_t v = 4 * r->var;
    if (v < granularity_us)
        v = granularity_us;
    return r->smoothed + v + max_ack_delay_us;
}
