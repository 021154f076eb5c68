/*
 * status.h - what a node tells `meshfs stat`: the control protocol's mesh
 * lines, encoded by the daemon (node/mesh.c) and decoded by the command
 * (cli/stat.c) with the same code, and the one rule for "in sync".
 *
 * A line is "KEY FIELD FIELD ..." (node/control.c frames them); fields are
 * decimal, hex (ids) or words, separated by one space. A decoder accepts
 * a line with more fields than it knows (a newer daemon) and one without
 * the trailing optional fields (an older one), so the two may differ by
 * a version.
 */
#ifndef MFS_NODE_STATUS_H
#define MFS_NODE_STATUS_H

#include <stddef.h>
#include <stdint.h>

/* "peer": one member this node's transport knows. */
typedef struct mfs_status_peer {
    uint64_t id;
    char addr[80];  /* "IP:PORT" */
    char state[16]; /* alive, suspect, dead, left, removed */
    uint64_t rtt_us;
    double loss_out, loss_in; /* fractions */
    uint64_t last_ms;         /* since its last packet */
    int heard;                /* it reported its state (replication) */
    uint64_t ops_they, bytes_they, ops_we, bytes_we; /* lacks, estimates */
    int64_t skew_ms;          /* its clock minus ours (ms) */
    uint64_t chunks_they;     /* chunks it reported missing */
    uint64_t wait_max_us;     /* longest wait for its packets (10-20 s) */
    /* its clock minus ours, NTP-style (us), the uncertainty, measured at
     * all (else skew_ms is the one-way estimate of its reports) */
    int64_t clock_us;
    uint64_t clock_err_us;
    int clock_ok;
    /* cumulative since this daemon started (they reset on a restart):
     * datagram bytes to and from it (the transport, after compression and
     * sealing), replication's ops and chunks to and from it, the
     * transport's retransmissions to it and its datagrams dropped */
    uint64_t bytes_in, bytes_out;
    uint64_t ops_sent, ops_recv, chunks_sent, chunks_recv;
    uint64_t retransmits, dropped;
} mfs_status_peer;

/* "clock": this node's time against the mesh's (node/clock.c). */
typedef struct mfs_status_clock {
    char state[16];  /* unknown, in-step, corrected */
    int64_t corr_ms; /* what its store adds to its clock */
    int64_t mesh_ms; /* the mesh's time minus its clock */
    uint64_t err_us;
    unsigned peers; /* members whose clocks were measured */
    int behind;     /* its clock runs behind its store's stamps */
} mfs_status_clock;

/* "catchup": what this node still has to receive. */
typedef struct mfs_status_catchup {
    int active;
    uint64_t ops, chunks, bytes;
    double ops_per_s, bytes_per_s;
    int64_t eta_ms; /* -1 unknown */
} mfs_status_catchup;

/* "snapshot": one being fetched (a node below the peers' floors). */
typedef struct mfs_status_snap {
    int active, refused;
    uint64_t from;
    uint64_t done, total, installed, served;
} mfs_status_snap;

/* "sync_job": one `meshfs sync` waiting (node/control.c): this node's
 * changes up to seq, held by have of want members, for elapsed_ms of its
 * timeout_ms. */
typedef struct mfs_status_syncjob {
    uint64_t seq;
    unsigned have, want;
    uint64_t elapsed_ms, timeout_ms;
} mfs_status_syncjob;

/* "invited": an open invitation of some member, as the registry lists
 * it on every member (store.h mfs_invited): its id (the first 8 bytes),
 * the node that made it, when (unix seconds), and joins left. */
typedef struct mfs_status_invited {
    uint64_t id, by;
    int64_t created, expires;
    unsigned uses;
} mfs_status_invited;

#define MFS_STATUS_LINE_MAX 512

/* Encoders write the line's fields, without the key, into buf (at least
 * MFS_STATUS_LINE_MAX bytes). Decoders return 0, or -EINVAL for a line
 * they cannot read (then *out is zeroed). */
void mfs_status_peer_format(const mfs_status_peer *p, char *buf, size_t cap);
int mfs_status_peer_parse(const char *fields, mfs_status_peer *out);
void mfs_status_catchup_format(const mfs_status_catchup *c, char *buf,
                               size_t cap);
int mfs_status_catchup_parse(const char *fields, mfs_status_catchup *out);
void mfs_status_clock_format(const mfs_status_clock *c, char *buf, size_t cap);
int mfs_status_clock_parse(const char *fields, mfs_status_clock *out);
void mfs_status_snap_format(const mfs_status_snap *s, char *buf, size_t cap);
int mfs_status_snap_parse(const char *fields, mfs_status_snap *out);
void mfs_status_syncjob_format(const mfs_status_syncjob *j, char *buf,
                               size_t cap);
int mfs_status_syncjob_parse(const char *fields, mfs_status_syncjob *out);
void mfs_status_invited_format(const mfs_status_invited *v, char *buf,
                               size_t cap);
int mfs_status_invited_parse(const char *fields, mfs_status_invited *out);

/* The one rule for "in sync", decided by the daemon (the "repl_in_sync"
 * line): replication has nothing to go either way with any live peer
 * (engine_in_sync: every live peer reported, neither side lacks ops, no
 * chunk is missing here or there, no snapshot pending), every peer the
 * transport sees alive has reported (the transport's view of liveness is
 * the fresher one: unheard_live counts the others), no file has
 * unpublished writes, and this node was not removed from the mesh. */
int mfs_status_in_sync(int engine_in_sync, size_t unheard_live,
                       uint64_t dirty_files, int removed_self);

#endif
