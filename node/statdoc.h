/*
 * statdoc.h - the status document (node/statdoc.c): the daemon's "stat"
 * reply as key/value pairs, read into what `meshfs stat`, `meshfs top`
 * and the status page show, and the one JSON object of `meshfs stat
 * --json` and /status.json (docs/STATUS.md, format MFS_STATDOC_FORMAT).
 */
#ifndef MFS_NODE_STATDOC_H
#define MFS_NODE_STATDOC_H

#include <stddef.h>
#include <stdio.h>

/* Version of the JSON document: raised when a field changes meaning or
 * goes away; adding fields keeps it (docs/STATUS.md). */
#define MFS_STATDOC_FORMAT 1

/* A reply's "key value" lines, in order (a key may repeat). */
typedef struct mfs_kv {
    size_t n;
    char **key;
    char **val;
} mfs_kv;

/* Appends a copy of k and v. 0 or -ENOMEM (r unchanged). */
int mfs_kv_add(mfs_kv *r, const char *k, const char *v);
void mfs_kv_free(mfs_kv *r);
/* First value of key, or NULL. */
const char *mfs_kv_get(const mfs_kv *r, const char *key);
/* v, or "0" when v is NULL or empty */
const char *mfs_statdoc_num(const char *v);
/* key's value as a number (0 when missing) */
unsigned long long mfs_statdoc_u64(const mfs_kv *r, const char *key);
/* s as a JSON string, or null when s is NULL */
void mfs_json_str(FILE *f, const char *s);
/* "1.5 MiB" */
void mfs_human_bytes(unsigned long long b, char *out, size_t cap);
/* This node's key fingerprint (STORE/node.key) in buf, or why there is
 * none; returns the text. */
const char *mfs_statdoc_own_key(const char *store, char *buf, size_t cap);

/* The store's numeric counters, in output order: reply key, text label. */
typedef struct mfs_statdoc_counter {
    const char *key;
    const char *label;
} mfs_statdoc_counter;
extern const mfs_statdoc_counter mfs_statdoc_counters[];
extern const size_t mfs_statdoc_ncounters;

/* One "peer" line of the control reply (node/mesh.c writes them). */
typedef struct mfs_statdoc_peer {
    char id[24], addr[80], state[16];
    unsigned long long rtt_us, last_ms, ops_they, bytes_they, ops_we, bytes_we;
    double loss_out, loss_in;
    int heard;
    long long skew_ms;
    unsigned long long chunks_they;
    unsigned long long wait_max_us; /* longest wait for its packets */
    long long clock_us;             /* its clock minus ours, measured */
    unsigned long long clock_err_us;
    int clock_ok;
    /* cumulative since the daemon started (node/status.h) */
    unsigned long long bytes_in, bytes_out, ops_sent, ops_recv, chunks_sent,
        chunks_recv, retransmits, dropped;
} mfs_statdoc_peer;
/* A "peer" line. 1 if it could be read. */
int mfs_statdoc_peer_parse(const char *v, mfs_statdoc_peer *p);
/* This node's "clock" line as people read it. 0: no such line. */
int mfs_statdoc_clock_text(const mfs_kv *r, char *buf, size_t cap);

typedef struct mfs_statdoc_summary {
    int known; /* the daemon runs with the mesh */
    int in_sync;
    int removed; /* this node was removed from the mesh */
    int catching_up;
    unsigned long long live, ops_to_go, chunks_to_go, bytes_to_go, dirty;
    double ops_rate, bytes_rate;
    long long eta_ms;
    /* the "snapshot" line: one being fetched, and counts */
    int snap_active, snap_refused;
    char snap_from[17];
    unsigned long long snap_done, snap_total, snaps_installed, snaps_served;
    char line[512];
} mfs_statdoc_summary;
/* Whether the mesh is in sync, and the sentence that says so. running:
 * the reply came from a daemon (else from a store opened read-only). */
void mfs_statdoc_summarize(const mfs_kv *r, int running,
                           mfs_statdoc_summary *m);

/* The daemon's "collect" and "collect_held_by" lines. */
typedef struct mfs_statdoc_collect {
    int have;
    unsigned long long passes, versions, inodes, chunks, bytes, pinned, held;
    char origin[17];
    unsigned long long max_pause_us, retention_ms, moved, disk_freed, early,
        trash_over, tombstones, moves;
    int settled, err;
    int held_by_have, held_live, held_heard;
    char held_by[17];
    unsigned long long held_ago_ms;
} mfs_statdoc_collect;
void mfs_statdoc_collect_parse(const mfs_kv *r, mfs_statdoc_collect *c);

/* The JSON document (one line). store and mount as the caller knows them
 * (mount NULL: not mounted). */
void mfs_statdoc_json(FILE *f, const mfs_kv *r, int running, const char *store,
                      const char *mount);

#endif
