/*
 * status.c - the control protocol's mesh lines and the "in sync" rule
 * (status.h).
 */
#include "status.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* peer ID ADDR STATE RTT_US LOSS_OUT LOSS_IN LAST_MS HEARD OPS_THEY
 *      BYTES_THEY OPS_WE BYTES_WE SKEW_MS [CHUNKS_THEY [WAIT_MAX_US
 *      [CLOCK_US CLOCK_ERR_US CLOCK_OK]]] */
void mfs_status_peer_format(const mfs_status_peer *p, char *buf, size_t cap)
{
    snprintf(buf, cap,
             "%016" PRIx64 " %s %s %" PRIu64 " %.4f %.4f %" PRIu64
             " %d %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRId64
             " %" PRIu64 " %" PRIu64 " %" PRId64 " %" PRIu64 " %d %" PRIu64
             " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
             " %" PRIu64 " %" PRIu64,
             p->id, p->addr[0] ? p->addr : "-", p->state[0] ? p->state : "-",
             p->rtt_us, p->loss_out, p->loss_in, p->last_ms, p->heard,
             p->ops_they, p->bytes_they, p->ops_we, p->bytes_we, p->skew_ms,
             p->chunks_they, p->wait_max_us, p->clock_us, p->clock_err_us,
             p->clock_ok, p->bytes_in, p->bytes_out, p->ops_sent, p->ops_recv,
             p->chunks_sent, p->chunks_recv, p->retransmits, p->dropped);
}

int mfs_status_peer_parse(const char *f, mfs_status_peer *p)
{
    memset(p, 0, sizeof(*p));
    int n = sscanf(
        f,
        "%" SCNx64 " %79s %15s %" SCNu64 " %lf %lf %" SCNu64 " %d %" SCNu64
        " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNd64 " %" SCNu64 " %" SCNu64
        " %" SCNd64 " %" SCNu64 " %d %" SCNu64 " %" SCNu64 " %" SCNu64
        " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64,
        &p->id, p->addr, p->state, &p->rtt_us, &p->loss_out, &p->loss_in,
        &p->last_ms, &p->heard, &p->ops_they, &p->bytes_they, &p->ops_we,
        &p->bytes_we, &p->skew_ms, &p->chunks_they, &p->wait_max_us,
        &p->clock_us, &p->clock_err_us, &p->clock_ok, &p->bytes_in,
        &p->bytes_out, &p->ops_sent, &p->ops_recv, &p->chunks_sent,
        &p->chunks_recv, &p->retransmits, &p->dropped);
    if (n < 13) {
        memset(p, 0, sizeof(*p));
        return -EINVAL;
    }
    return 0;
}

/* clock STATE CORR_MS MESH_MS ERR_US PEERS BEHIND */
void mfs_status_clock_format(const mfs_status_clock *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s %" PRId64 " %" PRId64 " %" PRIu64 " %u %d",
             c->state[0] ? c->state : "unknown", c->corr_ms, c->mesh_ms,
             c->err_us, c->peers, c->behind);
}

int mfs_status_clock_parse(const char *f, mfs_status_clock *c)
{
    memset(c, 0, sizeof(*c));
    if (sscanf(f, "%15s %" SCNd64 " %" SCNd64 " %" SCNu64 " %u %d", c->state,
               &c->corr_ms, &c->mesh_ms, &c->err_us, &c->peers,
               &c->behind) != 6) {
        memset(c, 0, sizeof(*c));
        return -EINVAL;
    }
    return 0;
}

/* catchup ACTIVE OPS CHUNKS BYTES OPS_PER_S BYTES_PER_S ETA_MS */
void mfs_status_catchup_format(const mfs_status_catchup *c, char *buf,
                               size_t cap)
{
    snprintf(buf, cap,
             "%d %" PRIu64 " %" PRIu64 " %" PRIu64 " %.1f %.1f %" PRId64,
             c->active, c->ops, c->chunks, c->bytes, c->ops_per_s,
             c->bytes_per_s, c->eta_ms);
}

int mfs_status_catchup_parse(const char *f, mfs_status_catchup *c)
{
    memset(c, 0, sizeof(*c));
    if (sscanf(f,
               "%d %" SCNu64 " %" SCNu64 " %" SCNu64 " %lf %lf %" SCNd64,
               &c->active, &c->ops, &c->chunks, &c->bytes, &c->ops_per_s,
               &c->bytes_per_s, &c->eta_ms) != 7) {
        memset(c, 0, sizeof(*c));
        return -EINVAL;
    }
    return 0;
}

/* snapshot ACTIVE FROM DONE TOTAL INSTALLED SERVED REFUSED */
void mfs_status_snap_format(const mfs_status_snap *s, char *buf, size_t cap)
{
    snprintf(buf, cap,
             "%d %016" PRIx64 " %" PRIu64 " %" PRIu64 " %" PRIu64 " %" PRIu64
             " %d",
             s->active, s->from, s->done, s->total, s->installed, s->served,
             s->refused);
}

int mfs_status_snap_parse(const char *f, mfs_status_snap *s)
{
    memset(s, 0, sizeof(*s));
    if (sscanf(f,
               "%d %" SCNx64 " %" SCNu64 " %" SCNu64 " %" SCNu64 " %" SCNu64
               " %d",
               &s->active, &s->from, &s->done, &s->total, &s->installed,
               &s->served, &s->refused) != 7) {
        memset(s, 0, sizeof(*s));
        return -EINVAL;
    }
    return 0;
}

/* sync_job SEQ HAVE WANT ELAPSED_MS TIMEOUT_MS */
void mfs_status_syncjob_format(const mfs_status_syncjob *j, char *buf,
                               size_t cap)
{
    snprintf(buf, cap, "%" PRIu64 " %u %u %" PRIu64 " %" PRIu64, j->seq,
             j->have, j->want, j->elapsed_ms, j->timeout_ms);
}

int mfs_status_syncjob_parse(const char *f, mfs_status_syncjob *j)
{
    memset(j, 0, sizeof(*j));
    if (sscanf(f, "%" SCNu64 " %u %u %" SCNu64 " %" SCNu64, &j->seq, &j->have,
               &j->want, &j->elapsed_ms, &j->timeout_ms) != 5) {
        memset(j, 0, sizeof(*j));
        return -EINVAL;
    }
    return 0;
}

/* invited ID BY CREATED EXPIRES USES */
void mfs_status_invited_format(const mfs_status_invited *v, char *buf,
                               size_t cap)
{
    snprintf(buf, cap,
             "%016" PRIx64 " %016" PRIx64 " %" PRId64 " %" PRId64 " %u", v->id,
             v->by, v->created, v->expires, v->uses);
}

int mfs_status_invited_parse(const char *f, mfs_status_invited *v)
{
    memset(v, 0, sizeof(*v));
    if (sscanf(f, "%" SCNx64 " %" SCNx64 " %" SCNd64 " %" SCNd64 " %u", &v->id,
               &v->by, &v->created, &v->expires, &v->uses) != 5) {
        memset(v, 0, sizeof(*v));
        return -EINVAL;
    }
    return 0;
}

int mfs_status_in_sync(int engine_in_sync, size_t unheard_live,
                       uint64_t dirty_files, int removed_self)
{
    return engine_in_sync && unheard_live == 0 && dirty_files == 0 &&
           !removed_self;
}
