/*
 * clock.c - the node's time: how far its clock is from the mesh's, and the
 * correction its store stamps with (docs/REPLICATION.md "Clocks").
 *
 * The transport measures each live peer's wall clock against ours from
 * heartbeats, NTP-style (sync/core.c clock_sample: the sample of least
 * round trip among the last 8, with half that round trip as its
 * uncertainty). Once a second (mfs_node_clock_tick, on the engine's
 * thread) the node takes the mesh's time to be the lower median of the
 * clocks it knows, its own included: a clock ahead is the one that hurts
 * (its stamps are refused as from the future, and would drag every
 * replica's hybrid logical clock), so of two it takes the earlier. A clock
 * that runs behind the stamps its own store holds by more than the bound
 * says so in its heartbeats (MFS_CLOCK_BEHIND): it is slow, and is not
 * taken while another clock is known; a clock its kernel says is
 * synchronized (NTP, chrony: MFS_CLOCK_SYNCED) is preferred over those
 * that are not (mfs_node_clock_pick). When the mesh's time is more than
 * CORRECT_MS away from ours (RELEASE_MS once correcting), the store adds
 * the difference to its clock (mfs_store_set_clock_correction): new
 * stamps, file times and conflict names follow the mesh, whatever the
 * clock says. Alone, a node keeps the last correction it had.
 *
 * STORE/clock remembers a correction for the next start
 * (mfs_node_clock_start): one that sets a clock *back* (it ran ahead) is
 * taken again at once, before any member is heard, so that a machine that
 * restarts alone with its clock still ahead stamps its changes with the
 * mesh's time and they flow when it reconnects; unless the corrected time
 * is itself more than the bound behind the store's stamps (the clock was
 * set right meanwhile). One that sets a clock forward is not: a clock
 * behind that was set right would then run ahead, and a clock behind
 * stalls nobody.
 */
#include "node.h"

#include "log.h"
#include "wire.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timex.h>

#define CLOCK_EVERY_US 1000000u /* how often the mesh's time is looked at */
#define CORRECT_MS 1000         /* further than this from the mesh: correct */
#define RELEASE_MS 500          /* correcting, closer than this: stop */
#define BEHIND_MS 60000         /* our clock behind our stamps: slow */

static int cand_cmp(const void *a, const void *b)
{
    int64_t x = ((const mfs_clock_cand *)a)->off_us;
    int64_t y = ((const mfs_clock_cand *)b)->off_us;
    return x < y ? -1 : x > y;
}

/* Keeps in c[0, *n) those that have flag (have: 1) or lack it (0), if
 * any does and any does not. */
static void keep_if(mfs_clock_cand *c, size_t *n, uint8_t flag, int have)
{
    size_t k = 0;
    for (size_t i = 0; i < *n; i++)
        k += ((c[i].flags & flag) != 0) == have;
    if (!k || k == *n)
        return;
    size_t j = 0;
    for (size_t i = 0; i < *n; i++)
        if (((c[i].flags & flag) != 0) == have)
            c[j++] = c[i];
    *n = j;
}

const mfs_clock_cand *mfs_node_clock_pick(mfs_clock_cand *c, size_t n)
{
    if (!n)
        return NULL;
    keep_if(c, &n, MFS_CLOCK_BEHIND, 0); /* slow clocks only if all are */
    keep_if(c, &n, MFS_CLOCK_SYNCED, 1); /* synchronized ones if any */
    qsort(c, n, sizeof(*c), cand_cmp);
    return &c[(n - 1) / 2]; /* the lower median: of two, the earlier */
}

/* What our kernel says of its clock (adjtimex): MFS_CLOCK_SYNCED or 0. */
static uint8_t kernel_synced(void)
{
    struct timex tx;
    memset(&tx, 0, sizeof tx);
    int st = adjtimex(&tx);
    return st >= 0 && st != TIME_ERROR && !(tx.status & STA_UNSYNC)
               ? MFS_CLOCK_SYNCED
               : 0;
}

/* "+10 min", "-1.0 d", "+350 ms": a signed duration for people. */
void mfs_node_clock_human(int64_t ms, char *buf, size_t cap)
{
    double a = (double)(ms < 0 ? -ms : ms);
    const char *sign = ms < 0 ? "-" : "+";
    if (a < 1000)
        snprintf(buf, cap, "%s%.0f ms", sign, a);
    else if (a < 120000)
        snprintf(buf, cap, "%s%.1f s", sign, a / 1000);
    else if (a < 7200000)
        snprintf(buf, cap, "%s%.0f min", sign, a / 60000);
    else if (a < 172800000)
        snprintf(buf, cap, "%s%.1f h", sign, a / 3600000);
    else
        snprintf(buf, cap, "%s%.1f d", sign, a / 86400000);
}

#define CLOCK_FILE "clock" /* STORE/clock: "correction_ms N\n" */

static void remember(mfs_node *m, int64_t corr_ms)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/%s", m->store_dir, CLOCK_FILE);
    int rc =
        mfs_write_file_replace(path, "correction_ms %" PRId64 "\n", corr_ms);
    if (rc)
        mfs_log(LOG_WARNING,
                "clock: cannot remember the correction in %s: %s; after a "
                "restart, this node starts from the one remembered before "
                "(if any) until a member is heard",
                path, strerror(-rc));
}

void mfs_node_clock_start(mfs_node *m)
{
    mfs_node_clock *k = &m->clock;
    char path[PATH_MAX + 16], line[64];
    long long corr;
    int end = 0;
    snprintf(path, sizeof path, "%s/%s", m->store_dir, CLOCK_FILE);
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    int ok = fgets(line, sizeof line, f) &&
             sscanf(line, "correction_ms %lld%n", &corr, &end) == 1 &&
             strcmp(line + end, "\n") == 0;
    fclose(f);
    if (!ok) {
        mfs_log(LOG_WARNING,
                "clock: %s is not \"correction_ms N\": ignored; this "
                "node uses its own clock until a member is heard",
                path);
        return;
    }
    pthread_mutex_lock(&k->mu);
    k->saved_ms = corr;
    k->saved_set = 1;
    pthread_mutex_unlock(&k->mu);
    if (corr >= 0)
        return; /* (forward: not from memory) */
    int64_t now = (int64_t)mfs_store_wall_ms(m->store) + corr;
    if (now + BEHIND_MS < (int64_t)mfs_store_hlc_ms(m->store)) {
        mfs_log(LOG_NOTICE,
                "clock: the correction remembered (%lld ms) would put this "
                "node's time behind its own stamps: the clock was set "
                "meanwhile; not taken",
                corr);
        return;
    }
    char d[32];
    mfs_node_clock_human(-corr, d, sizeof d);
    pthread_mutex_lock(&k->mu);
    k->corr_ms = k->logged_ms = corr;
    k->remembered = 1;
    pthread_mutex_unlock(&k->mu);
    mfs_store_set_clock_correction(m->store, corr);
    mfs_log(LOG_WARNING,
            "clock: this node's clock was %s ahead of the mesh's when last "
            "measured: its changes carry the corrected time until a member "
            "is heard; set the clock right (`timedatectl set-ntp true`)",
            d);
}

static void log_change(const mfs_node_clock *k, int64_t mesh_ms)
{
    char d[32];
    mfs_node_clock_human(-mesh_ms, d, sizeof d);
    if (k->state == MFS_CLOCK_CORRECTED)
        mfs_log(LOG_WARNING,
                "clock: this node's clock is %s %s the mesh's (the median of "
                "%u member clock(s), +/- %" PRIu64 " ms): its new changes are "
                "stamped with the mesh's time instead, so they reach the "
                "others at once; set the clock right (`timedatectl "
                "set-ntp true`, or see `timedatectl status`)",
                d, mesh_ms < 0 ? "ahead of" : "behind", k->npeers + 1,
                k->err_us / 1000);
    else
        mfs_log(LOG_NOTICE,
                "clock: this node's clock is in step with the mesh's (%s, "
                "+/- %" PRIu64 " ms): no correction",
                d, k->err_us / 1000);
}

void mfs_node_clock_tick(mfs_node *m, uint64_t now)
{
    mfs_node_clock *k = &m->clock;
    if (k->next_us && now < k->next_us)
        return;
    k->next_us = now + CLOCK_EVERY_US;
    /* our own clock against the stamps our store holds */
    uint64_t wall = mfs_store_wall_ms(m->store);
    int behind = wall + BEHIND_MS < mfs_store_hlc_ms(m->store);
    uint8_t mine = (uint8_t)((behind ? MFS_CLOCK_BEHIND : 0) | kernel_synced());
    if (m->net.clock_flags)
        m->net.clock_flags(m->net.ctx, mine);
    mfs_peer_stat ps[64];
    size_t np = m->net.peers(m->net.ctx, ps, 64), n = 0;
    mfs_clock_cand c[65];
    c[n++] = (mfs_clock_cand){0, 0, mine};
    for (size_t i = 0; i < np && i < 64; i++)
        if (ps[i].id && ps[i].state != MFS_PEER_DEAD && ps[i].clock_ok)
            c[n++] = (mfs_clock_cand){ps[i].clock_offset_us, ps[i].clock_err_us,
                                      ps[i].clock_flags};
    pthread_mutex_lock(&k->mu);
    k->behind = behind;
    unsigned measured = 0;
    for (size_t i = 0; i < np && i < 64; i++)
        measured += ps[i].id && ps[i].state != MFS_PEER_DEAD && ps[i].clock_ok;
    k->npeers = measured;
    if (!measured) { /* alone: the last correction stands */
        pthread_mutex_unlock(&k->mu);
        return;
    }
    const mfs_clock_cand *med = mfs_node_clock_pick(c, n);
    int64_t mesh_ms = med->off_us / 1000;
    k->mesh_ms = mesh_ms;
    k->err_us = med->err_us;
    int64_t a = mesh_ms < 0 ? -mesh_ms : mesh_ms;
    int64_t slack = (int64_t)(med->err_us / 1000);
    int was = k->state;
    if (a > CORRECT_MS + slack ||
        (k->state == MFS_CLOCK_CORRECTED && a > RELEASE_MS))
        k->state = MFS_CLOCK_CORRECTED;
    else
        k->state = MFS_CLOCK_IN_STEP;
    k->corr_ms = k->state == MFS_CLOCK_CORRECTED ? mesh_ms : 0;
    k->remembered = 0;
    mfs_store_set_clock_correction(m->store, k->corr_ms);
    /* said once per change of state, and when the correction moved by
     * more than a second (a clock set meanwhile) */
    int64_t moved = k->corr_ms - k->logged_ms;
    if (k->state != was ||
        (k->state == MFS_CLOCK_CORRECTED && (moved > 1000 || moved < -1000))) {
        k->logged_ms = k->corr_ms;
        log_change(k, mesh_ms);
    }
    /* remembered for the next start when it changed by more than a
     * second, came or went */
    int64_t d = k->corr_ms - k->saved_ms;
    if (!k->saved_set || d > 1000 || d < -1000 ||
        (k->corr_ms == 0) != (k->saved_ms == 0)) {
        k->saved_ms = k->corr_ms;
        k->saved_set = 1;
        remember(m, k->corr_ms);
    }
    pthread_mutex_unlock(&k->mu);
}

void mfs_node_clock_first(mfs_node *m, uint64_t now)
{
    mfs_node_clock *k = &m->clock;
    if (k->state != MFS_CLOCK_UNKNOWN)
        return;
    k->next_us = now; /* the first measurement may have come with it */
    mfs_node_clock_tick(m, now);
}

void mfs_node_clock_get(mfs_node *m, mfs_node_clock *out)
{
    mfs_node_clock *k = &m->clock;
    pthread_mutex_lock(&k->mu);
    *out = *k;
    pthread_mutex_unlock(&k->mu);
}
