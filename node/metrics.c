/*
 * metrics.c - the node's metrics in Prometheus's text format (version
 * 0.0.4), served at /metrics by the status page (node/http.c) and listed
 * in docs/STATUS.md. Names follow Prometheus's conventions: a meshfs_
 * prefix, base units (seconds, bytes), _total for counters, one family's
 * samples together under its HELP and TYPE.
 *
 * Where the numbers come from: the "stat" reply (mfs_control_stat, the
 * same numbers `meshfs stat` shows: the store, collection, the write
 * concern, catch-up), the file system's request counts (fs/opstats.c),
 * and the transport's and replication's per-peer counters (what `meshfs
 * stat` folds into a line per peer). Counters count since the daemon
 * started; gauges are the state now.
 */
#include "metrics.h"

#include "fs.h"
#include "node.h"
#include "statdoc.h"
#include "status.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#define PEERS_MAX 64

/* One family's header. */
static void family(FILE *f, const char *name, const char *type,
                   const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A family of one sample without labels, from the stat reply. */
static void from_reply(FILE *f, const mfs_kv *r, const char *name,
                       const char *type, const char *key, const char *help)
{
    family(f, name, type, help);
    fprintf(f, "%s %llu\n", name, mfs_statdoc_u64(r, key));
}

static void store_metrics(FILE *f, const mfs_kv *r)
{
    static const struct {
        const char *kind, *key;
    } inodes[] = {{"file", "files"},
                  {"directory", "dirs"},
                  {"symlink", "symlinks"},
                  {"other", "others"}};
    family(f, "meshfs_store_inodes", "gauge",
           "Live inodes in the store, by kind.");
    for (size_t i = 0; i < sizeof inodes / sizeof *inodes; i++)
        fprintf(f, "meshfs_store_inodes{kind=\"%s\"} %llu\n", inodes[i].kind,
                mfs_statdoc_u64(r, inodes[i].key));
    /* store size by kind: what the content takes, and what is on disk */
    static const struct {
        const char *kind, *key;
    } sizes[] = {
        {"live_content", "bytes"},     {"chunks", "chunk_bytes"},
        {"store_file", "store_bytes"}, {"intent_log", "log_bytes"},
        {"pack_files", "pack_bytes"},  {"pack_files_live", "pack_live"},
    };
    family(f, "meshfs_store_size_bytes", "gauge",
           "The store's size by kind: live_content (the live files' "
           "bytes), chunks (all content held, with the trash), store_file "
           "(LMDB), intent_log, pack_files (on disk) and pack_files_live.");
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++)
        fprintf(f, "meshfs_store_size_bytes{kind=\"%s\"} %llu\n", sizes[i].kind,
                mfs_statdoc_u64(r, sizes[i].key));
    from_reply(f, r, "meshfs_store_chunks", "gauge", "chunks",
               "Chunks the store holds.");
    from_reply(f, r, "meshfs_store_ops", "gauge", "ops",
               "Ops in the op log (not yet folded).");
    from_reply(f, r, "meshfs_store_local_ops", "gauge", "local_seq",
               "Ops this node has made (its last sequence number).");
    from_reply(f, r, "meshfs_conflicts", "gauge", "conflicts",
               "Conflict copies the tree holds now.");
    from_reply(f, r, "meshfs_unpublished_files", "gauge", "dirty_files",
               "Files with writes not yet published as a version.");
    from_reply(f, r, "meshfs_writes_behind_total", "counter", "writes_behind",
               "Writes answered before the store had them (write-behind).");
    from_reply(f, r, "meshfs_late_write_errors_total", "counter",
               "writes_failed_late",
               "Writes answered early that then failed (reported at "
               "fsync or close).");
}

static void collect_metrics(FILE *f, const mfs_kv *r)
{
    mfs_statdoc_collect c;
    mfs_statdoc_collect_parse(r, &c);
    if (!c.have)
        return;
    family(f, "meshfs_collection_passes_total", "counter",
           "Collection passes run.");
    fprintf(f, "meshfs_collection_passes_total %llu\n", c.passes);
    family(f, "meshfs_collection_freed_total", "counter",
           "What collection freed, by kind.");
    fprintf(f,
            "meshfs_collection_freed_total{kind=\"version\"} %llu\n"
            "meshfs_collection_freed_total{kind=\"deleted_file\"} %llu\n"
            "meshfs_collection_freed_total{kind=\"chunk\"} %llu\n"
            "meshfs_collection_freed_total{kind=\"tombstone\"} %llu\n"
            "meshfs_collection_freed_total{kind=\"undo_record\"} %llu\n",
            c.versions, c.inodes, c.chunks, c.tombstones, c.moves);
    family(f, "meshfs_collection_freed_bytes_total", "counter",
           "Chunk bytes collection freed.");
    fprintf(f, "meshfs_collection_freed_bytes_total %llu\n", c.bytes);
    family(f, "meshfs_collection_disk_freed_bytes_total", "counter",
           "Pack file bytes given back to the disk.");
    fprintf(f, "meshfs_collection_disk_freed_bytes_total %llu\n", c.disk_freed);
    family(f, "meshfs_collection_held_back", "gauge",
           "1 while a member that lacks ops holds collection back.");
    fprintf(f, "meshfs_collection_held_back %d\n", c.held_by_have);
}

static void acks_metrics(FILE *f, const mfs_kv *r)
{
    from_reply(f, r, "meshfs_acks_required", "gauge", "acks_n",
               "Members that must hold a change before fsync returns "
               "(--acks; 0: off).");
    from_reply(f, r, "meshfs_acks_waiting", "gauge", "acks_waiting",
               "fsyncs waiting for acks now.");
    from_reply(f, r, "meshfs_acks_met_total", "counter", "acks_met",
               "fsyncs whose acks came in time.");
    from_reply(f, r, "meshfs_acks_early_pushes_total", "counter", "acks_early",
               "Pushes of fsync'd ops sent to a member with their intent "
               "log record, before the commit that carries them.");
    family(f, "meshfs_acks_failed_total", "counter",
           "fsyncs that failed for want of acks, by reason.");
    fprintf(f,
            "meshfs_acks_failed_total{reason=\"timeout\"} %llu\n"
            "meshfs_acks_failed_total{reason=\"too_few_members\"} %llu\n"
            "meshfs_acks_failed_total{reason=\"other\"} %llu\n",
            mfs_statdoc_u64(r, "acks_failed_timeout"),
            mfs_statdoc_u64(r, "acks_failed_peers"),
            mfs_statdoc_u64(r, "acks_failed_other"));
}

static void sync_metrics(FILE *f, const mfs_kv *r)
{
    mfs_statdoc_summary s;
    mfs_statdoc_summarize(r, 1, &s);
    family(f, "meshfs_in_sync", "gauge",
           "1 when nothing is left to go either way with every live "
           "member (meshfs stat's in sync).");
    fprintf(f, "meshfs_in_sync %d\n", s.in_sync);
    family(f, "meshfs_live_peers", "gauge", "Members alive now.");
    fprintf(f, "meshfs_live_peers %llu\n", s.live);
    family(f, "meshfs_catchup_active", "gauge",
           "1 while this node has ops or chunks to receive.");
    fprintf(f, "meshfs_catchup_active %d\n", s.catching_up);
    family(f, "meshfs_catchup_remaining", "gauge",
           "What this node still has to receive, by kind (bytes is an "
           "estimate).");
    fprintf(f,
            "meshfs_catchup_remaining{kind=\"ops\"} %llu\n"
            "meshfs_catchup_remaining{kind=\"chunks\"} %llu\n"
            "meshfs_catchup_remaining{kind=\"bytes\"} %llu\n",
            s.ops_to_go, s.chunks_to_go, s.bytes_to_go);
    family(f, "meshfs_catchup_receive_bytes_per_second", "gauge",
           "The catch-up's receive rate, smoothed.");
    fprintf(f, "meshfs_catchup_receive_bytes_per_second %.1f\n", s.bytes_rate);
    family(f, "meshfs_catchup_eta_seconds", "gauge",
           "When the catch-up should end at its rate (-1: unknown).");
    fprintf(f, "meshfs_catchup_eta_seconds %.3f\n",
            s.eta_ms < 0 ? -1.0 : (double)s.eta_ms / 1000.0);
    family(f, "meshfs_snapshot_bytes", "gauge",
           "A snapshot being fetched: bytes done and in all.");
    fprintf(f,
            "meshfs_snapshot_bytes{kind=\"done\"} %llu\n"
            "meshfs_snapshot_bytes{kind=\"total\"} %llu\n",
            s.snap_done, s.snap_total);
}

static void fs_metrics(FILE *f, const mfs_fs *fs)
{
    static mfs_fsop_stat st[MFS_FSOP__COUNT]; /* under the caller's lock */
    mfs_fs_op_stats(fs, st);
    family(f, "meshfs_fuse_requests_total", "counter",
           "FUSE requests answered, by kind.");
    for (int op = 0; op < MFS_FSOP__COUNT; op++)
        fprintf(f, "meshfs_fuse_requests_total{op=\"%s\"} %" PRIu64 "\n",
                mfs_fsop_names[op], st[op].count);
    family(f, "meshfs_fuse_request_duration_seconds", "histogram",
           "Time the daemon spent on a FUSE request, by kind (its "
           "handler; an fsync's wait for acks is in meshfs_acks_*).");
    for (int op = 0; op < MFS_FSOP__COUNT; op++) {
        const char *n = mfs_fsop_names[op];
        uint64_t cum = 0;
        for (int b = 0; b < MFS_FSOP_BUCKETS - 1; b++) {
            cum += st[op].bucket[b];
            fprintf(f,
                    "meshfs_fuse_request_duration_seconds_bucket{op=\"%s\","
                    "le=\"%g\"} %" PRIu64 "\n",
                    n, (double)mfs_fsop_bound_us[b] / 1e6, cum);
        }
        cum += st[op].bucket[MFS_FSOP_BUCKETS - 1];
        /* +Inf is the count: a sum read a request ahead stays monotonic */
        if (cum < st[op].count)
            cum = st[op].count;
        fprintf(f,
                "meshfs_fuse_request_duration_seconds_bucket{op=\"%s\","
                "le=\"+Inf\"} %" PRIu64 "\n"
                "meshfs_fuse_request_duration_seconds_sum{op=\"%s\"} %.9f\n"
                "meshfs_fuse_request_duration_seconds_count{op=\"%s\"} "
                "%" PRIu64 "\n",
                n, cum, n, (double)st[op].sum_ns / 1e9, n, cum);
    }
}

/* The per-peer families: one line per peer in each. */
typedef struct peer_view {
    size_t np, nr;
    mfs_peer_stat ps[PEERS_MAX];
    mfs_repl_peer rp[PEERS_MAX];
    mfs_repl_status st;
    uint64_t global_drops[MFS_DROP__COUNT];
} peer_view;

static const mfs_repl_peer *repl_of(const peer_view *v, uint64_t id)
{
    for (size_t k = 0; k < v->nr && k < PEERS_MAX; k++)
        if (v->rp[k].id == id)
            return &v->rp[k];
    return NULL;
}

enum peer_field {
    PF_RTT,
    PF_BYTES_OUT,
    PF_BYTES_IN,
    PF_DGRAMS_OUT,
    PF_DGRAMS_IN,
    PF_RETRANSMITS,
    PF_LOST,
    PF_OPS_SENT,
    PF_OPS_RECV,
    PF_CHUNKS_SENT,
    PF_CHUNKS_RECV,
    PF_OPS_THEY_LACK,
    PF_OPS_WE_LACK,
    PF_CLOCK,
};

static const struct {
    enum peer_field field;
    const char *name, *type, *help;
} peer_families[] = {
    {PF_RTT, "meshfs_peer_rtt_seconds", "gauge",
     "Smoothed round-trip time to the member."},
    {PF_BYTES_OUT, "meshfs_peer_sent_bytes_total", "counter",
     "Datagram bytes sent to the member (sealed, compressed)."},
    {PF_BYTES_IN, "meshfs_peer_received_bytes_total", "counter",
     "Datagram bytes received from the member."},
    {PF_DGRAMS_OUT, "meshfs_peer_sent_datagrams_total", "counter",
     "Datagrams sent to the member."},
    {PF_DGRAMS_IN, "meshfs_peer_received_datagrams_total", "counter",
     "Datagrams received from the member."},
    {PF_RETRANSMITS, "meshfs_peer_retransmits_total", "counter",
     "Frames sent again to the member (a loss or a timeout)."},
    {PF_LOST, "meshfs_peer_lost_packets_total", "counter",
     "Packets to the member declared lost."},
    {PF_OPS_SENT, "meshfs_peer_ops_sent_total", "counter",
     "Ops sent to the member."},
    {PF_OPS_RECV, "meshfs_peer_ops_received_total", "counter",
     "Ops received from the member."},
    {PF_CHUNKS_SENT, "meshfs_peer_chunks_sent_total", "counter",
     "Chunks sent to the member."},
    {PF_CHUNKS_RECV, "meshfs_peer_chunks_received_total", "counter",
     "Chunks received from the member."},
    {PF_OPS_THEY_LACK, "meshfs_peer_ops_it_lacks", "gauge",
     "Ops this node holds that the member lacks (as it last reported)."},
    {PF_OPS_WE_LACK, "meshfs_peer_ops_we_lack", "gauge",
     "Ops the member holds that this node lacks."},
    {PF_CLOCK, "meshfs_peer_clock_offset_seconds", "gauge",
     "The member's clock minus this node's, measured NTP-style."},
};

static void peer_value(FILE *f, enum peer_field fl, const mfs_peer_stat *p,
                       const mfs_repl_peer *q)
{
    const mfs_repl_peer none = {0};
    if (!q)
        q = &none;
    const uint64_t counts[] = {
        [PF_BYTES_OUT] = p->bytes_out,
        [PF_BYTES_IN] = p->bytes_in,
        [PF_DGRAMS_OUT] = p->dgrams_out,
        [PF_DGRAMS_IN] = p->dgrams_in,
        [PF_RETRANSMITS] = p->retransmits,
        [PF_LOST] = p->pkts_lost,
        [PF_OPS_SENT] = q->ops_sent,
        [PF_OPS_RECV] = q->ops_recv,
        [PF_CHUNKS_SENT] = q->chunks_sent,
        [PF_CHUNKS_RECV] = q->chunks_recv,
        [PF_OPS_THEY_LACK] = q->ops_they_lack,
        [PF_OPS_WE_LACK] = q->ops_we_lack,
    };
    if (fl == PF_RTT)
        fprintf(f, "%.6f\n", (double)p->srtt_us / 1e6);
    else if (fl == PF_CLOCK)
        fprintf(f, "%.6f\n", (double)p->clock_offset_us / 1e6);
    else
        fprintf(f, "%" PRIu64 "\n", counts[fl]);
}

static const char *peer_state(const mfs_peer_stat *p, const mfs_repl_peer *q)
{
    if (q && q->removed)
        return "removed";
    if (q && q->left)
        return "left";
    return mfs_sync_state_name(p->state);
}

static void peer_metrics(FILE *f, mfs_node *m)
{
    static peer_view v; /* large: under the caller's lock */
    memset(&v, 0, sizeof v);
    v.np = m->net.peers(m->net.ctx, v.ps, PEERS_MAX);
    v.nr = mfs_repl_status_get(m->repl, &v.st, v.rp, PEERS_MAX);
    if (m->net.global_drops)
        m->net.global_drops(m->net.ctx, v.global_drops);
    static const char *const states[] = {"alive", "suspect", "dead", "left",
                                         "removed"};
    family(f, "meshfs_peer_state", "gauge",
           "1 for the state each member is in (alive, suspect, dead, "
           "left, removed), 0 for the others.");
    for (size_t i = 0; i < v.np && i < PEERS_MAX; i++) {
        const mfs_peer_stat *p = &v.ps[i];
        if (!p->id)
            continue; /* a seed address that never answered */
        const char *st = peer_state(p, repl_of(&v, p->id));
        for (size_t s = 0; s < sizeof states / sizeof *states; s++)
            fprintf(f,
                    "meshfs_peer_state{peer=\"%016" PRIx64 "\",state=\"%s\"}"
                    " %d\n",
                    p->id, states[s], strcmp(st, states[s]) == 0);
    }
    for (size_t k = 0; k < sizeof peer_families / sizeof *peer_families; k++) {
        family(f, peer_families[k].name, peer_families[k].type,
               peer_families[k].help);
        for (size_t i = 0; i < v.np && i < PEERS_MAX; i++) {
            const mfs_peer_stat *p = &v.ps[i];
            if (!p->id || (peer_families[k].field == PF_CLOCK && !p->clock_ok))
                continue;
            fprintf(f, "%s{peer=\"%016" PRIx64 "\"} ", peer_families[k].name,
                    p->id);
            peer_value(f, peer_families[k].field, p, repl_of(&v, p->id));
        }
    }
    family(f, "meshfs_dropped_datagrams_total", "counter",
           "Datagrams dropped, by reason and by the member they came from "
           "(peer=\"\": an address of no known member).");
    for (int d = 0; d < MFS_DROP__COUNT; d++) {
        fprintf(f,
                "meshfs_dropped_datagrams_total{peer=\"\",reason=\"%s\"} "
                "%" PRIu64 "\n",
                mfs_sync_drop_name(d), v.global_drops[d]);
        for (size_t i = 0; i < v.np && i < PEERS_MAX; i++)
            if (v.ps[i].id)
                fprintf(f,
                        "meshfs_dropped_datagrams_total{peer=\"%016" PRIx64
                        "\",reason=\"%s\"} %" PRIu64 "\n",
                        v.ps[i].id, mfs_sync_drop_name(d), v.ps[i].drops[d]);
    }
    family(f, "meshfs_repl_bad_messages_total", "counter",
           "Replication messages dropped as malformed.");
    fprintf(f, "meshfs_repl_bad_messages_total %" PRIu64 "\n", v.st.bad_msgs);
    family(f, "meshfs_repl_refused_messages_total", "counter",
           "Messages of removed members refused.");
    fprintf(f, "meshfs_repl_refused_messages_total %" PRIu64 "\n",
            v.st.refused);
}

void mfs_metrics_write(FILE *f, const mfs_kv *r, const mfs_fs *fs,
                       mfs_node *mesh)
{
    family(f, "meshfs_info", "gauge",
           "This node: its id and the daemon's version (always 1).");
    fprintf(f, "meshfs_info{node=\"%s\",version=\"%s\"} 1\n",
            mfs_statdoc_num(mfs_kv_get(r, "node")),
            mfs_kv_get(r, "version") ? mfs_kv_get(r, "version") : "");
    store_metrics(f, r);
    collect_metrics(f, r);
    acks_metrics(f, r);
    if (fs)
        fs_metrics(f, fs);
    if (mesh) {
        sync_metrics(f, r);
        peer_metrics(f, mesh);
    }
}
