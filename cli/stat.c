/*
 * stat.c - `meshfs stat`: what this node, its store and its mount hold, or
 * the version and chunks of one file; `meshfs members` and `remove`; and
 * `meshfs sync`, the barrier that waits until the members hold this
 * node's changes (streamed by the daemon's "sync", daemon.h).
 *
 * If a daemon serves the store it is asked over the control socket (it is
 * the only writer); otherwise the store is opened read-only (LMDB lets a
 * reader run beside a writer, and no lock is taken). Output is text for
 * people or one JSON object (--json). Never writes to a store.
 */
#include "cli.h"
#include "ident.h"
#include "daemon.h"
#include "status.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

/* This node's key fingerprint (STORE/node.key), or why there is none. */
static const char *own_key(const char *store)
{
    static char buf[64];
    mfs_ident id;
    int r = mfs_ident_load(store, &id);
    if (r == -ENOENT)
        return "none (a mesh of one mesh key)";
    if (r < 0) {
        snprintf(buf, sizeof buf, "? (%s)", strerror(-r));
        return buf;
    }
    mfs_ident_fingerprint(id.pk, buf);
    mfs_ident_wipe(&id);
    return buf;
}

/* A move from the mesh key under way ("migrating MOVED MEMBERS KEYED
 * MET"): what it waits for. */
static void print_migration(const cli_reply *r)
{
    unsigned moved, members, keyed, met;
    const char *v = cli_reply_get(r, "migrating");
    if (!v || sscanf(v, "%u %u %u %u", &moved, &members, &keyed, &met) != 4)
        return;
    if (!moved)
        printf("%-18s %u of %u other members have a key (meshfs migrate); "
               "the mesh key speaks until all do\n",
               "moving", keyed, members);
    else
        printf("%-18s per-node keys on; the mesh key is forgotten once this "
               "node has met every member (%u of %u)\n",
               "moving", met, members);
}

/* Numeric store counters, in output order: reply key, text label. */
static const struct {
    const char *key;
    const char *label;
} counters[] = {
    {"files", "files"},
    {"dirs", "directories"},
    {"symlinks", "symlinks"},
    {"others", "other nodes"},
    {"bytes", "bytes"},
    {"ops", "ops"},
    {"ops_folded", "ops folded"},
    {"local_seq", "local ops"},
    {"conflicts", "conflicts"},
    {"dirty_files", "unpublished files"},
    {"chunks", "chunks"},
    {"chunk_bytes", "chunk bytes"},
    {"store_bytes", "store size"},
    {"log_bytes", "intent log size"},
    {"map_bytes", "map size"},
    {"pack_files", "pack files"},
    {"pack_bytes", "pack bytes"},
    {"pack_live", "pack bytes live"},
    /* since the mount (docs/FS.md "Write-behind"); 0 without a daemon */
    {"writes_behind", "writes queued"},
    {"writes_failed_late", "late write errors"},
};

/* The write concern's lines of the daemon's reply (node/mesh.c), in
 * --json as they are; the counters are 0 without a daemon. */
static const char *const acks_keys[] = {
    "acks_n",
    "acks_timeout_ms",
    "acks_wait",
    "acks_on_close",
    "acks_waiting",
    "acks_met",
    "acks_failed_timeout",
    "acks_failed_peers",
    "acks_failed_other",
    "acks_p50_us",
    "acks_p99_us",
};

/* s as a JSON string, or null when s is NULL */
static void json_str(FILE *f, const char *s)
{
    if (!s) {
        fputs("null", f);
        return;
    }
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(f, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(f, "\\u%04x", *p);
        else
            fputc(*p, f);
    }
    fputc('"', f);
}

static const char *num_or_zero(const char *v)
{
    return v && v[0] ? v : "0";
}

/* One "peer" line of the control reply (node/mesh.c writes them). */
typedef struct peer_row {
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
} peer_row;

/* The line's fields (node/status.c decodes them) as this file prints
 * them. 1 if it could be read. */
static int parse_peer(const char *v, peer_row *p)
{
    mfs_status_peer s;
    memset(p, 0, sizeof *p);
    if (mfs_status_peer_parse(v, &s) < 0)
        return 0;
    snprintf(p->id, sizeof p->id, "%016" PRIx64, s.id);
    snprintf(p->addr, sizeof p->addr, "%s", s.addr);
    snprintf(p->state, sizeof p->state, "%s", s.state);
    p->rtt_us = s.rtt_us;
    p->loss_out = s.loss_out;
    p->loss_in = s.loss_in;
    p->last_ms = s.last_ms;
    p->heard = s.heard;
    p->ops_they = s.ops_they;
    p->bytes_they = s.bytes_they;
    p->ops_we = s.ops_we;
    p->bytes_we = s.bytes_we;
    p->skew_ms = s.skew_ms;
    p->chunks_they = s.chunks_they;
    p->wait_max_us = s.wait_max_us;
    p->clock_us = s.clock_us;
    p->clock_err_us = s.clock_err_us;
    p->clock_ok = s.clock_ok;
    return 1;
}

/* This node's "clock" line as people read it: "+10 min ahead of the mesh:
 * corrected (...)", "in step with the mesh (...)". 0: no such line. */
static int clock_text(const cli_reply *r, char *buf, size_t cap)
{
    mfs_status_clock c;
    const char *v = cli_reply_get(r, "clock");
    if (!v || mfs_status_clock_parse(v, &c) < 0)
        return 0;
    char d[32];
    mfs_node_clock_human(-c.mesh_ms, d, sizeof d); /* ours minus the mesh's */
    const char *slow = c.behind ? "; this clock runs behind the stamps this "
                                  "store holds"
                                : "";
    if (strcmp(c.state, "corrected") == 0)
        snprintf(buf, cap,
                 "%s %s the mesh: corrected (new changes carry the mesh's "
                 "time; measured against %u member%s, +/- %.1f ms; set the "
                 "clock right: timedatectl set-ntp true)%s",
                 d, c.mesh_ms < 0 ? "ahead of" : "behind", c.peers,
                 c.peers == 1 ? "" : "s", (double)c.err_us / 1000, slow);
    else if (strcmp(c.state, "in-step") == 0)
        snprintf(buf, cap,
                 "in step with the mesh (%s, measured against %u member%s, "
                 "+/- %.1f ms)%s",
                 d, c.peers, c.peers == 1 ? "" : "s", (double)c.err_us / 1000,
                 slow);
    else if (strcmp(c.state, "remembered") == 0) {
        mfs_node_clock_human(-c.corr_ms, d, sizeof d);
        snprintf(buf, cap,
                 "%s ahead of the mesh when last measured: corrected from "
                 "memory (no member measured yet; set the clock right: "
                 "timedatectl set-ntp true)%s",
                 d, slow);
    } else
        snprintf(buf, cap, "not measured yet (no member heard)%s", slow);
    return 1;
}

typedef struct sync_summary {
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
} sync_summary;

static void human_bytes(unsigned long long b, char *out, size_t cap)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int i = 0;
    while (v >= 1024 && i < 4) {
        v /= 1024;
        i++;
    }
    snprintf(out, cap, i ? "%.1f %s" : "%.0f %s", v, u[i]);
}

static void summarize(const cli_reply *r, int running, sync_summary *m)
{
    memset(m, 0, sizeof *m);
    const char *rs = cli_reply_get(r, "repl_in_sync");
    m->dirty = strtoull(num_or_zero(cli_reply_get(r, "dirty_files")), NULL, 10);
    if (!running || !rs) {
        snprintf(m->line, sizeof m->line, "%s",
                 running ? "unknown (built without the mesh)"
                         : "unknown: the daemon is not running");
        return;
    }
    m->known = 1;
    m->live = strtoull(num_or_zero(cli_reply_get(r, "live_peers")), NULL, 10);
    mfs_status_catchup cu;
    const char *cl = cli_reply_get(r, "catchup");
    if (cl && mfs_status_catchup_parse(cl, &cu) == 0) {
        m->catching_up = cu.active;
        m->ops_to_go = cu.ops;
        m->chunks_to_go = cu.chunks;
        m->bytes_to_go = cu.bytes;
        m->ops_rate = cu.ops_per_s;
        m->bytes_rate = cu.bytes_per_s;
        m->eta_ms = cu.eta_ms;
    }
    mfs_status_snap sn;
    const char *sl = cli_reply_get(r, "snapshot");
    if (sl && mfs_status_snap_parse(sl, &sn) == 0) {
        m->snap_active = sn.active;
        m->snap_refused = sn.refused;
        snprintf(m->snap_from, sizeof m->snap_from, "%016" PRIx64, sn.from);
        m->snap_done = sn.done;
        m->snap_total = sn.total;
        m->snaps_installed = sn.installed;
        m->snaps_served = sn.served;
    }
    if (m->snap_active)
        m->catching_up = 1;
    unsigned long long owe = 0, owed = 0, their_chunks = 0, silent = 0;
    for (size_t i = 0; i < r->n; i++) {
        peer_row p;
        if (strcmp(r->key[i], "peer") == 0 && parse_peer(r->val[i], &p) &&
            strcmp(p.state, "dead") != 0 && strcmp(p.state, "left") != 0) {
            owe += p.ops_they;
            owed += p.ops_we;
            their_chunks += p.chunks_they;
            silent += !p.heard;
        }
    }
    /* the daemon decides (mfs_status_in_sync): the rest is for the text */
    m->in_sync = strcmp(rs, "1") == 0;
    const char *rm = cli_reply_get(r, "removed_self");
    if (rm) {
        m->in_sync = 0;
        m->removed = 1;
        if (strspn(rm, "0") == strlen(rm))
            snprintf(m->line, sizeof m->line,
                     "NOT in sync: this node was removed from the mesh; the "
                     "members refuse its changes (to take part again: "
                     "`meshfs join` a new invitation; this store is then "
                     "kept aside, and its changes the mesh lacks are "
                     "copied to /lost+found)");
        else
            snprintf(m->line, sizeof m->line,
                     "NOT in sync: this node was removed from the mesh (node "
                     "%.16s refuses it); the members refuse its changes (to "
                     "take part again: `meshfs join` a new invitation; this "
                     "store is then kept aside, and its changes the mesh "
                     "lacks are copied to /lost+found)",
                     rm);
        return;
    }
    if (m->in_sync && m->live == 0)
        snprintf(m->line, sizeof m->line,
                 "in sync (no live peers: nothing to compare with)");
    else if (m->in_sync)
        snprintf(m->line, sizeof m->line, "in sync with %llu live peer%s",
                 m->live, m->live == 1 ? "" : "s");
    else
        snprintf(m->line, sizeof m->line,
                 "NOT in sync: %llu ops and %llu chunks to receive; peers lack "
                 "%llu ops and %llu chunks; %llu unpublished files; %llu "
                 "peers not heard from",
                 owed, m->chunks_to_go, owe, their_chunks, m->dirty, silent);
}

static void print_mesh_text(const cli_reply *r, const sync_summary *m)
{
    char b1[32], b2[32], b3[32];
    const char *listen = cli_reply_get(r, "listen");
    if (listen)
        printf("%-18s %s\n", "listen", listen);
    printf("%-18s %s\n", "sync", m->line);
    char ck[320];
    if (clock_text(r, ck, sizeof ck))
        printf("%-18s %s\n", "clock", ck);
    const char *rj = cli_reply_get(r, "rejoin");
    if (rj)
        printf("%-18s %s\n", "rejoin", rj);
    if (m->known && m->catching_up) {
        human_bytes(m->bytes_to_go, b1, sizeof b1);
        human_bytes((unsigned long long)m->bytes_rate, b2, sizeof b2);
        if (m->eta_ms >= 0)
            snprintf(b3, sizeof b3, "%lld s", (m->eta_ms + 999) / 1000);
        else
            snprintf(b3, sizeof b3, "unknown");
        printf("%-18s %llu ops, %llu chunks (~%s) to go at %.0f ops/s, "
               "%s/s; ETA %s\n",
               "catch-up", m->ops_to_go, m->chunks_to_go, b1, m->ops_rate, b2,
               b3);
    }
    if (m->known && m->snap_active) {
        human_bytes(m->snap_done, b1, sizeof b1);
        human_bytes(m->snap_total, b2, sizeof b2);
        printf("%-18s fetching from %s: %s of %s (this node lacks ops the "
               "mesh folded into its state)\n",
               "snapshot", m->snap_from, b1, m->snap_total ? b2 : "?");
    } else if (m->known && m->snap_refused) {
        printf("%-18s refused: this node folded ops the snapshot lacked; "
               "asking for a newer one\n",
               "snapshot");
    } else if (m->known && (m->snaps_installed || m->snaps_served)) {
        printf("%-18s %llu installed, %llu served\n", "snapshots",
               m->snaps_installed, m->snaps_served);
    }
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->key[i], "conflict_path") == 0)
            printf("  conflict: %s\n", r->val[i]);
    int header = 0;
    for (size_t i = 0; i < r->n; i++) {
        peer_row p;
        if (strcmp(r->key[i], "peer") != 0 || !parse_peer(r->val[i], &p))
            continue;
        if (!header) {
            printf("peers:\n  %-16s %-21s %-7s %8s %6s %9s %13s %13s %9s\n",
                   "node", "address", "state", "rtt", "loss", "contact",
                   "it lacks", "we lack", "its clock");
            header = 1;
        }
        char rtt[32], lc[32], it[64], we[64];
        snprintf(rtt, sizeof rtt, "%.1fms", (double)p.rtt_us / 1000);
        snprintf(lc, sizeof lc, "%.1fs ago", (double)p.last_ms / 1000);
        human_bytes(p.bytes_they, b1, sizeof b1);
        human_bytes(p.bytes_we, b2, sizeof b2);
        if (p.heard) {
            snprintf(it, sizeof it, "%llu/%s", p.ops_they, b1);
            snprintf(we, sizeof we, "%llu/%s", p.ops_we, b2);
        } else {
            snprintf(it, sizeof it, "?");
            snprintf(we, sizeof we, "?");
        }
        char clk[32];
        mfs_node_clock_human(p.skew_ms, clk + 1, sizeof clk - 1);
        clk[0] = p.clock_ok ? ' ' : '~'; /* ~: one-way, from its reports */
        printf("  %-16s %-21s %-7s %8s %5.1f%% %9s %13s %13s %9s\n", p.id,
               p.addr, p.state, rtt,
               100 * (p.loss_out > p.loss_in ? p.loss_out : p.loss_in), lc, it,
               we, clk);
    }
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->key[i], "seed") == 0)
            printf("  seed %s: no answer yet\n", r->val[i]);
}

static void print_mesh_json(const cli_reply *r, const sync_summary *m)
{
    printf(",\"listen\":");
    json_str(stdout, cli_reply_get(r, "listen"));
    printf(",\"in_sync\":%s,\"removed\":%s,\"sync\":",
           m->in_sync ? "true" : "false", m->removed ? "true" : "false");
    json_str(stdout, m->line);
    printf(",\"rejoin\":");
    json_str(stdout, cli_reply_get(r, "rejoin"));
    mfs_status_clock c;
    const char *cv = cli_reply_get(r, "clock");
    if (cv && mfs_status_clock_parse(cv, &c) == 0) {
        char ck[320];
        clock_text(r, ck, sizeof ck);
        printf(",\"clock\":{\"state\":");
        json_str(stdout, c.state);
        printf(",\"offset_ms\":%lld,\"correction_ms\":%lld,\"err_ms\":%.3f,"
               "\"peers\":%u,\"behind_stamps\":%s,\"text\":",
               (long long)-c.mesh_ms, (long long)c.corr_ms,
               (double)c.err_us / 1000, c.peers, c.behind ? "true" : "false");
        json_str(stdout, ck);
        printf("}");
    }
    printf(",\"live_peers\":%llu,\"peers\":[", m->live);
    int first = 1;
    for (size_t i = 0; i < r->n; i++) {
        peer_row p;
        if (strcmp(r->key[i], "peer") != 0 || !parse_peer(r->val[i], &p))
            continue;
        printf("%s{\"id\":", first ? "" : ",");
        json_str(stdout, p.id);
        printf(",\"addr\":");
        json_str(stdout, p.addr);
        printf(",\"state\":");
        json_str(stdout, p.state);
        printf(",\"rtt_ms\":%.3f,\"loss\":%.4f,\"loss_out\":%.4f,"
               "\"loss_in\":%.4f,\"last_contact_ms\":%llu,\"heard\":%s,"
               "\"ops_they_lack\":%llu,\"bytes_they_lack\":%llu,"
               "\"ops_we_lack\":%llu,\"bytes_we_lack\":%llu,"
               "\"clock_skew_ms\":%lld,\"chunks_they_lack\":%llu,"
               "\"longest_wait_ms\":%.3f,\"clock_measured\":%s,"
               "\"clock_offset_ms\":%.3f,\"clock_err_ms\":%.3f}",
               (double)p.rtt_us / 1000,
               p.loss_out > p.loss_in ? p.loss_out : p.loss_in, p.loss_out,
               p.loss_in, p.last_ms, p.heard ? "true" : "false", p.ops_they,
               p.bytes_they, p.ops_we, p.bytes_we, p.skew_ms, p.chunks_they,
               (double)p.wait_max_us / 1000, p.clock_ok ? "true" : "false",
               (double)p.clock_us / 1000, (double)p.clock_err_us / 1000);
        first = 0;
    }
    printf("],\"seeds\":[");
    first = 1;
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->key[i], "seed") == 0) {
            printf("%s", first ? "" : ",");
            json_str(stdout, r->val[i]);
            first = 0;
        }
    printf("],\"conflict_paths\":[");
    first = 1;
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->key[i], "conflict_path") == 0) {
            printf("%s", first ? "" : ",");
            json_str(stdout, r->val[i]);
            first = 0;
        }
    unsigned long long qmax = 0, qdrop = 0, sdrop = 0, wmax = 0;
    const char *rq = cli_reply_get(r, "repl_queue");
    if (rq)
        sscanf(rq, "%llu %llu %llu %llu", &qmax, &qdrop, &sdrop, &wmax);
    printf("],\"repl_queue\":{\"max_bytes\":%llu,\"dropped\":%llu,"
           "\"send_dropped\":%llu,\"storing_max_bytes\":%llu}",
           qmax, qdrop, sdrop, wmax);
    printf(",\"catchup\":{\"active\":%s,\"ops_to_go\":%llu,"
           "\"chunks_to_go\":%llu,\"bytes_to_go\":%llu,\"ops_per_s\":%.1f,"
           "\"bytes_per_s\":%.1f,\"eta_ms\":%lld,\"snapshot\":{"
           "\"active\":%s,\"from\":\"%s\",\"bytes_done\":%llu,"
           "\"bytes_total\":%llu,\"installed\":%llu,\"served\":%llu,"
           "\"refused\":%s}}",
           m->catching_up ? "true" : "false", m->ops_to_go, m->chunks_to_go,
           m->bytes_to_go, m->ops_rate, m->bytes_rate, m->eta_ms,
           m->snap_active ? "true" : "false",
           m->snap_active ? m->snap_from : "", m->snap_done, m->snap_total,
           m->snaps_installed, m->snaps_served,
           m->snap_refused ? "true" : "false");
}

static unsigned long long reply_num(const cli_reply *r, const char *key)
{
    return strtoull(num_or_zero(cli_reply_get(r, key)), NULL, 10);
}

/* "write concern: acks 1, timeout 10 s: 0 waiting, 120 met, ..." */
static void print_acks_text(const cli_reply *r, int running)
{
    unsigned long long n = reply_num(r, "acks_n");
    char mode[160];
    if (!n) {
        printf("%-18s off\n", "write concern");
        return;
    }
    snprintf(mode, sizeof mode, "acks %llu, timeout %g s%s%s", n,
             (double)reply_num(r, "acks_timeout_ms") / 1000.0,
             reply_num(r, "acks_wait") ? ", waits for members that are down"
                                       : "",
             reply_num(r, "acks_on_close") ? ", also on close" : "");
    if (!running) {
        printf("%-18s %s (remembered; the daemon is not running)\n",
               "write concern", mode);
        return;
    }
    unsigned long long to = reply_num(r, "acks_failed_timeout"),
                       few = reply_num(r, "acks_failed_peers"),
                       other = reply_num(r, "acks_failed_other"),
                       p50 = reply_num(r, "acks_p50_us"),
                       p99 = reply_num(r, "acks_p99_us");
    char lat[96];
    if (p99)
        snprintf(lat, sizeof lat, "latency p50 %.1f ms / p99 %.1f ms",
                 (double)p50 / 1000.0, (double)p99 / 1000.0);
    else
        snprintf(lat, sizeof lat, "no acks to time");
    printf("%-18s %s: %llu waiting, %llu met, %llu failed (%llu timed out, "
           "%llu too few members, %llu other: unmount, no memory), %s (last "
           "minute)\n",
           "write concern", mode, reply_num(r, "acks_waiting"),
           reply_num(r, "acks_met"), to + few + other, to, few, other, lat);
}

/* The daemon's "collect" and "collect_held_by" lines. */
typedef struct collect_row {
    int have;
    unsigned long long passes, versions, inodes, chunks, bytes, pinned, held;
    char origin[17];
    unsigned long long max_pause_us, retention_ms, moved, disk_freed, early,
        trash_over, tombstones, moves;
    int settled, err;
    int held_by_have, held_live, held_heard;
    char held_by[17];
    unsigned long long held_ago_ms;
} collect_row;

static void parse_collect(const cli_reply *r, collect_row *c)
{
    memset(c, 0, sizeof *c);
    const char *v = cli_reply_get(r, "collect");
    c->have =
        v && sscanf(v,
                    "%llu %llu %llu %llu %llu %llu %llu %16s %llu "
                    "%d %d %llu %llu %llu %llu %llu %llu %llu",
                    &c->passes, &c->versions, &c->inodes, &c->chunks, &c->bytes,
                    &c->pinned, &c->held, c->origin, &c->max_pause_us,
                    &c->settled, &c->err, &c->retention_ms, &c->moved,
                    &c->disk_freed, &c->early, &c->trash_over,
                    &c->tombstones, &c->moves) == 18;
    v = cli_reply_get(r, "collect_held_by");
    c->held_by_have =
        v && sscanf(v, "%16s %d %d %llu", c->held_by, &c->held_live,
                    &c->held_heard, &c->held_ago_ms) == 4;
}

static void ago_text(unsigned long long ms, char *out, size_t cap)
{
    if (ms < 120000)
        snprintf(out, cap, "%llu s", ms / 1000);
    else if (ms < 7200000)
        snprintf(out, cap, "%llu min", ms / 60000);
    else if (ms < 172800000)
        snprintf(out, cap, "%llu h", ms / 3600000);
    else
        snprintf(out, cap, "%llu d", ms / 86400000);
}

/* Where the store's space goes, from the counters: the content of live
 * files, content kept beyond it (the trash, and versions not settled or
 * not collected yet), and on disk: the pack files (chunk bytes, with what
 * is dead in them until their pack empties or is evacuated), the store
 * file (metadata, op log, tombstones, small chunks, free pages LMDB keeps)
 * and the intent log (fsync's records; a fixed size, written at creation). */
static void print_space_text(const cli_reply *r)
{
    unsigned long long
        live = strtoull(num_or_zero(cli_reply_get(r, "bytes")), NULL, 10),
        held = strtoull(num_or_zero(cli_reply_get(r, "chunk_bytes")), NULL, 10),
        file = strtoull(num_or_zero(cli_reply_get(r, "store_bytes")), NULL, 10),
        wal = strtoull(num_or_zero(cli_reply_get(r, "log_bytes")), NULL, 10),
        packs = strtoull(num_or_zero(cli_reply_get(r, "pack_bytes")), NULL, 10),
        plive = strtoull(num_or_zero(cli_reply_get(r, "pack_live")), NULL, 10);
    char l[32], h[32], k[32], f[32], p[32], d[32], t[32], w[32];
    human_bytes(live, l, sizeof l);
    human_bytes(held, h, sizeof h);
    human_bytes(held > live ? held - live : 0, k, sizeof k);
    human_bytes(file, f, sizeof f);
    human_bytes(packs, p, sizeof p);
    human_bytes(packs > plive ? packs - plive : 0, d, sizeof d);
    human_bytes(file + packs + wal, t, sizeof t);
    human_bytes(wal, w, sizeof w);
    printf("%-18s content %s (live files %s; kept beyond them: %s, the trash "
           "and what is not collected yet); on disk %s: pack files %s (%s "
           "dead, not reclaimed yet), store file %s (metadata, op log, small "
           "chunks, free pages), intent log %s\n",
           "space", h, l, k, t, p, d, f, w);
}

static void print_collect_text(const cli_reply *r)
{
    collect_row c;
    parse_collect(r, &c);
    if (!c.have)
        return;
    char b[32], t[32];
    human_bytes(c.bytes, b, sizeof b);
    if (c.retention_ms)
        snprintf(t, sizeof t, "%.1f days", (double)c.retention_ms / 86400000.0);
    else
        snprintf(t, sizeof t, "off");
    char df[32];
    human_bytes(c.disk_freed, df, sizeof df);
    printf("%-18s freed %llu versions, %llu deleted files, %llu chunks (%s), "
           "%llu tombstones, %llu settled moves' undo records; gave %s of "
           "pack files back to the disk; trash %s\n",
           "collection", c.versions, c.inodes, c.chunks, b, c.tombstones,
           c.moves, df, t);
    if (c.held_by_have) {
        char a[32];
        ago_text(c.held_ago_ms, a, sizeof a);
        if (!c.held_heard)
            printf("%-18s held back by %s: not heard from since this daemon "
                   "started (`meshfs remove %s` if it is gone for good)\n",
                   "", c.held_by, c.held_by);
        else if (!c.held_live)
            printf("%-18s held back by %s, offline %s: it resumes when %s "
                   "catches up, or after `meshfs remove %s` if it is gone "
                   "for good\n",
                   "", c.held_by, a, c.held_by, c.held_by);
        else
            printf("%-18s held back by %s until it catches up\n", "",
                   c.held_by);
    } else if (!c.settled) {
        printf("%-18s waiting for the mesh to settle\n", "");
    }
    if (c.pinned)
        printf("%-18s %llu items kept for open files or unpublished writes\n",
               "", c.pinned);
    if (c.trash_over) {
        char o[32];
        human_bytes(c.trash_over, o, sizeof o);
        printf("%-18s the trash was %s over its share of the disk "
               "(-o trash-share): its oldest items went early\n",
               "", o);
    }
    if (c.early)
        printf("%-18s %llu trash items freed before their time to keep the "
               "trash within its share of the disk\n",
               "", c.early);
    if (c.err)
        printf("%-18s last pass failed: %s\n", "",
               strerror(c.err < 0 ? -c.err : c.err));
}

static void print_collect_json(const cli_reply *r)
{
    collect_row c;
    parse_collect(r, &c);
    if (!c.have)
        return;
    printf(",\"collection\":{\"passes\":%llu,\"versions\":%llu,"
           "\"deleted_files\":%llu,\"chunks\":%llu,\"chunk_bytes\":%llu,"
           "\"kept_for_open_files\":%llu,\"held_back_items\":%llu,"
           "\"max_pause_us\":%llu,\"settled\":%s,\"error\":%d,"
           "\"trash_ms\":%llu,\"chunks_moved\":%llu,\"disk_freed\":%llu,"
           "\"trash_early\":%llu,\"trash_over\":%llu,\"tombstones\":%llu,"
           "\"undo_records\":%llu,\"held_by\":",
           c.passes, c.versions, c.inodes, c.chunks, c.bytes, c.pinned, c.held,
           c.max_pause_us, c.settled ? "true" : "false", c.err, c.retention_ms,
           c.moved, c.disk_freed, c.early, c.trash_over, c.tombstones,
           c.moves);
    if (c.held_by_have) {
        printf("{\"node\":");
        json_str(stdout, c.held_by);
        printf(",\"live\":%s,\"heard\":%s,\"last_contact_ms\":%llu}",
               c.held_live ? "true" : "false", c.held_heard ? "true" : "false",
               c.held_ago_ms);
    } else {
        printf("null");
    }
    printf("}");
}

/* Builds a reply-shaped record from a read-only store. */
static int offline_stats(const char *store, cli_reply *r, char *err,
                         size_t errcap)
{
    mfs_store *s = NULL;
    mfs_store_stats st;
    char v[64];
    memset(r, 0, sizeof *r);
    int rc = mfs_store_open(&s, store, NULL, MFS_STORE_RDONLY);
    if (rc < 0) {
        if (rc == -ENOENT)
            snprintf(err, errcap,
                     "no meshfs store in %s (create one with "
                     "`meshfs init`)",
                     store);
        else
            snprintf(err, errcap, "cannot open store %s: %s", store,
                     mfs_store_strerror(rc));
        return rc;
    }
    rc = mfs_store_stats_get(s, &st);
    mfs_store_close(s);
    if (rc < 0) {
        snprintf(err, errcap, "cannot read the statistics of %s: %s", store,
                 strerror(-rc));
        return rc;
    }
    /* the write concern the next mount runs with (defaults if none) */
    mfs_acks_config acks;
    mfs_daemon_acks_read(store, &acks);
    /* same keys as the daemon's "stat" reply */
    struct {
        const char *k;
        uint64_t v;
    } kv[] = {
        {"files", st.files},
        {"dirs", st.dirs},
        {"symlinks", st.symlinks},
        {"others", st.others},
        {"bytes", st.bytes},
        {"ops", st.ops},
        {"local_seq", st.local_seq},
        {"conflicts", st.conflicts},
        {"dirty_files", st.dirty_files},
        {"chunks", st.chunks},
        {"chunk_bytes", st.chunk_bytes},
        {"store_bytes", st.store_bytes},
        {"log_bytes", st.log_bytes},
        {"map_bytes", st.map_bytes},
        {"pack_files", st.pack_files},
        {"pack_bytes", st.pack_bytes},
        {"pack_live", st.pack_live},
        {"acks_n", acks.n},
        {"acks_timeout_ms", acks.timeout_ms},
        {"acks_wait", (uint64_t)acks.wait},
        {"acks_on_close", (uint64_t)acks.on_close},
    };
    char **keys = calloc(sizeof kv / sizeof *kv + 2, sizeof *keys);
    char **vals = calloc(sizeof kv / sizeof *kv + 2, sizeof *vals);
    if (!keys || !vals) {
        free(keys);
        free(vals);
        return -ENOMEM;
    }
    r->key = keys;
    r->val = vals;
    snprintf(v, sizeof v, "%016" PRIx64, st.node_id);
    r->key[r->n] = strdup("node");
    r->val[r->n++] = strdup(v);
    r->key[r->n] = strdup("store");
    r->val[r->n++] = strdup(store);
    for (size_t i = 0; i < sizeof kv / sizeof *kv; i++) {
        snprintf(v, sizeof v, "%" PRIu64, kv[i].v);
        r->key[r->n] = strdup(kv[i].k);
        r->val[r->n++] = strdup(v);
    }
    for (size_t i = 0; i < r->n; i++)
        if (!r->key[i] || !r->val[i])
            return -ENOMEM;
    return 0;
}

static int store_stat(const char *store, int json)
{
    cli_reply r;
    char err[512];
    int running = 0;
    const char *mount = NULL;
    char deadmnt[PATH_MAX] = "";
    if (cli_control_call(store, "stat", 10000, &r) == 0 && !r.err) {
        running = 1;
        mount = cli_reply_get(&r, "mount");
    } else {
        if (r.n || r.err)
            cli_reply_free(&r);
        int rc = offline_stats(store, &r, err, sizeof err);
        if (rc < 0) {
            cli_reply_free(&r);
            return cli_fail("%s", err);
        }
        cli_mount m;
        if (cli_mount_by_store(store, &m) == 1) {
            snprintf(deadmnt, sizeof deadmnt, "%s", m.mnt);
            mount = deadmnt;
        }
    }
    const char *pid = running ? cli_reply_get(&r, "pid") : NULL;
    sync_summary sum;
    summarize(&r, running, &sum);
    if (json) {
        printf("{\"node\":");
        json_str(stdout, num_or_zero(cli_reply_get(&r, "node")));
        printf(",\"key\":");
        json_str(stdout, own_key(store));
        unsigned mv, mm, mk, mt;
        const char *mg = cli_reply_get(&r, "migrating");
        if (mg && sscanf(mg, "%u %u %u %u", &mv, &mm, &mk, &mt) == 4)
            printf(",\"migration\":{\"moved\":%s,\"members\":%u,"
                   "\"keyed\":%u,\"met\":%u}",
                   mv ? "true" : "false", mm, mk, mt);
        else
            printf(",\"migration\":null");
        printf(",\"store\":");
        json_str(stdout, store);
        printf(",\"mount\":");
        json_str(stdout, mount);
        printf(",\"daemon\":%s,\"daemon_pid\":%s", running ? "true" : "false",
               pid ? pid : "null");
        for (size_t i = 0; i < sizeof counters / sizeof *counters; i++)
            printf(",\"%s\":%s", counters[i].key,
                   num_or_zero(cli_reply_get(&r, counters[i].key)));
        for (size_t i = 0; i < sizeof acks_keys / sizeof *acks_keys; i++)
            printf(",\"%s\":%llu", acks_keys[i], reply_num(&r, acks_keys[i]));
        print_mesh_json(&r, &sum);
        print_collect_json(&r);
        printf("}\n");
    } else {
        printf("%-18s %s\n", "node", num_or_zero(cli_reply_get(&r, "node")));
        printf("%-18s %s\n", "key", own_key(store));
        print_migration(&r);
        printf("%-18s %s\n", "store", store);
        if (mount && running)
            printf("%-18s %s (daemon pid %s)\n", "mount", mount,
                   pid ? pid : "?");
        else if (mount)
            printf("%-18s %s (daemon not running: dead mount)\n", "mount",
                   mount);
        else
            printf("%-18s not mounted\n", "mount");
        for (size_t i = 0; i < sizeof counters / sizeof *counters; i++)
            printf("%-18s %s\n", counters[i].label,
                   num_or_zero(cli_reply_get(&r, counters[i].key)));
        print_acks_text(&r, running);
        print_mesh_text(&r, &sum);
        print_space_text(&r);
        print_collect_text(&r);
    }
    cli_reply_free(&r);
    return CLI_OK;
}

static void stamp_text(const char *hlc_s, char *out, size_t cap)
{
    uint64_t hlc = strtoull(hlc_s ? hlc_s : "0", NULL, 10);
    if (!hlc) {
        snprintf(out, cap, "none");
        return;
    }
    uint64_t ms = hlc >> 16;
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char buf[64];
    strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, cap, "%s.%03uZ+%u", buf, (unsigned)(ms % 1000),
             (unsigned)(hlc & 0xffff));
}

static int file_stat(const char *path, const cli_mount *m, uint64_t ino,
                     int json)
{
    cli_reply r;
    char req[64], when[96];
    snprintf(req, sizeof req, "file %" PRIu64, ino);
    int rc = cli_control_call(m->source, req, 10000, &r);
    if (rc < 0)
        return cli_fail("the daemon of %s does not answer: %s", m->mnt,
                        strerror(-rc));
    if (r.err) {
        int code = cli_fail("%s: %s", path, r.msg);
        cli_reply_free(&r);
        return code;
    }
    stamp_text(cli_reply_get(&r, "version_hlc"), when, sizeof when);
    const char *dirty = cli_reply_get(&r, "dirty");
    int is_dirty = dirty && strcmp(dirty, "0") != 0;
    if (json) {
        printf("{\"path\":");
        json_str(stdout, path);
        printf(",\"mount\":");
        json_str(stdout, m->mnt);
        printf(",\"store\":");
        json_str(stdout, m->source);
        printf(",\"ino\":%s,\"id\":", num_or_zero(cli_reply_get(&r, "ino")));
        json_str(stdout, num_or_zero(cli_reply_get(&r, "id")));
        printf(",\"version\":{\"hlc\":%s,\"node\":",
               num_or_zero(cli_reply_get(&r, "version_hlc")));
        json_str(stdout, num_or_zero(cli_reply_get(&r, "version_node")));
        printf(",\"time\":");
        json_str(stdout, when);
        printf("},\"size\":%s,\"nchunks\":%s,\"heads\":%s,\"dirty\":%s,"
               "\"chunks\":[",
               num_or_zero(cli_reply_get(&r, "size")),
               num_or_zero(cli_reply_get(&r, "nchunks")),
               num_or_zero(cli_reply_get(&r, "heads")),
               is_dirty ? "true" : "false");
        int first = 1;
        for (size_t i = 0; i < r.n; i++) {
            if (strcmp(r.key[i], "chunk") != 0)
                continue;
            printf("%s", first ? "" : ",");
            json_str(stdout, r.val[i]);
            first = 0;
        }
        printf("],\"held_by\":[");
        first = 1;
        for (size_t i = 0; i < r.n; i++) {
            char id[24], holds[16];
            if (strcmp(r.key[i], "peer_holds") != 0 ||
                sscanf(r.val[i], "%23s %15s", id, holds) != 2)
                continue;
            printf("%s{\"peer\":", first ? "" : ",");
            json_str(stdout, id);
            printf(",\"holds\":");
            json_str(stdout, holds);
            printf("}");
            first = 0;
        }
        printf("]}\n");
    } else {
        printf("%-10s %s\n", "file", path);
        printf("%-10s %s\n", "inode", num_or_zero(cli_reply_get(&r, "ino")));
        printf("%-10s %s\n", "id", num_or_zero(cli_reply_get(&r, "id")));
        printf("%-10s %s by node %s\n", "version", when,
               num_or_zero(cli_reply_get(&r, "version_node")));
        printf("%-10s %s\n", "size", num_or_zero(cli_reply_get(&r, "size")));
        printf("%-10s %s\n", "heads", num_or_zero(cli_reply_get(&r, "heads")));
        printf("%-10s %s\n", "dirty",
               is_dirty ? "yes (unpublished writes)" : "no");
        for (size_t i = 0; i < r.n; i++) {
            char id[24], holds[16];
            if (strcmp(r.key[i], "peer_holds") == 0 &&
                sscanf(r.val[i], "%23s %15s", id, holds) == 2)
                printf("%-10s %s: %s\n", "peer", id,
                       strcmp(holds, "yes") == 0        ? "holds this version"
                       : strcmp(holds, "fetching") == 0 ? "has the version, "
                                                          "fetching chunks"
                       : strcmp(holds, "no") == 0       ? "does not have it yet"
                                                        : "not heard from yet");
        }
        printf("%-10s %s\n", "chunks",
               num_or_zero(cli_reply_get(&r, "nchunks")));
        for (size_t i = 0; i < r.n; i++)
            if (strcmp(r.key[i], "chunk") == 0)
                printf("  %s\n", r.val[i]);
    }
    cli_reply_free(&r);
    return CLI_OK;
}

int cli_cmd_stat(int argc, char **argv)
{
    cli_args a;
    char store[PATH_MAX], path[PATH_MAX];
    int is_default;
    int r =
        cli_args_parse("stat", argc, argv, CLI_OPT_STORE | CLI_OPT_JSON, 1, &a);
    if (r)
        return r;
    if (a.npos && a.store)
        return cli_usage_error("give either a path or --store", a.pos[0]);
    if (!a.npos) {
        if (cli_store_dir(a.store, store, sizeof store, &is_default) < 0)
            return cli_fail("cannot find the default store: set HOME, "
                            "MESHFS_STORE or use --store DIR");
        return store_stat(store, a.json);
    }
    if (cli_abspath(a.pos[0], path, sizeof path) < 0)
        return cli_fail("path too long: %s", a.pos[0]);
    struct stat st;
    cli_mount m;
    if (cli_mount_dead(path) && cli_mount_at(path, &m) == 1 &&
        cli_mount_is_meshfs(&m))
        return store_stat(m.source, a.json); /* dead mount */
    if (lstat(path, &st) < 0) {
        int e = errno;
        return cli_fail("cannot stat %s: %s", path, strerror(e));
    }
    if (cli_mount_by_dev(major(st.st_dev), minor(st.st_dev), &m) == 1 &&
        cli_mount_is_meshfs(&m)) {
        if (st.st_ino == MFS_ROOT_INO)
            return store_stat(m.source, a.json);
        return file_stat(path, &m, (uint64_t)st.st_ino, a.json);
    }
    /* a store directory given as the argument */
    char data[PATH_MAX + 16];
    snprintf(data, sizeof data, "%s/data.mdb", path);
    if (S_ISDIR(st.st_mode) && access(data, F_OK) == 0)
        return store_stat(path, a.json);
    return cli_fail("not in a meshfs mount and not a store: %s", path);
}

/* ---- meshfs members / meshfs remove ------------------------------------ */

/* The store of [MOUNTPOINT | --store DIR]; 0 or an exit code. */
static int store_of(const cli_args *a, char *store, size_t cap)
{
    int is_default;
    if (!a->npos) {
        if (cli_store_dir(a->store, store, cap, &is_default) < 0)
            return cli_fail("cannot find the default store: set HOME, "
                            "MESHFS_STORE or use --store DIR");
        return 0;
    }
    char path[PATH_MAX];
    struct stat st;
    cli_mount m;
    if (cli_abspath(a->pos[a->npos - 1], path, sizeof path) < 0)
        return cli_fail("path too long: %s", a->pos[a->npos - 1]);
    if (lstat(path, &st) == 0 &&
        cli_mount_by_dev(major(st.st_dev), minor(st.st_dev), &m) == 1 &&
        cli_mount_is_meshfs(&m)) {
        snprintf(store, cap, "%s", m.source);
        return 0;
    }
    return cli_fail("not in a meshfs mount: %s", path);
}

static int ask_stat(const char *store, cli_reply *r)
{
    if (cli_control_call(store, "stat", 10000, r) < 0)
        return cli_fail("the daemon of %s is not running (members are known "
                        "only to a mounted store)",
                        store);
    if (r->err) {
        int code = cli_fail("%s", r->msg);
        cli_reply_free(r);
        return code;
    }
    return 0;
}

/* The fingerprint of node id's key ("key ID FPR" lines of the stat
 * reply), or "-" (a mesh of one mesh key, or no record yet). */
static const char *key_of(const cli_reply *r, const char *id)
{
    size_t n = strlen(id);
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->key[i], "key") && !strncmp(r->val[i], id, n) &&
            r->val[i][n] == ' ')
            return r->val[i] + n + 1;
    return "-";
}

int cli_cmd_members(int argc, char **argv)
{
    cli_args a;
    char store[PATH_MAX];
    int rc = cli_args_parse("members", argc, argv, CLI_OPT_STORE | CLI_OPT_JSON,
                            1, &a);
    if (rc || (rc = store_of(&a, store, sizeof store)))
        return rc;
    cli_reply r;
    if ((rc = ask_stat(store, &r)))
        return rc;
    const char *self = num_or_zero(cli_reply_get(&r, "node"));
    if (a.json)
        printf("[{\"node\":\"%s\",\"state\":\"self\",\"key\":\"%s\"}", self,
               key_of(&r, self));
    else
        printf("%-16s %-21s %-8s %12s %12s  %s\n%-16s %-21s %-8s %12s %12s  "
               "%s\n",
               "node", "address", "state", "it lacks", "contact", "key", self,
               "(this node)", "self", "", "", key_of(&r, self));
    for (size_t i = 0; i < r.n; i++) {
        peer_row p;
        if (strcmp(r.key[i], "peer") || !parse_peer(r.val[i], &p))
            continue;
        if (a.json) {
            printf(",{\"node\":\"%s\",\"address\":", p.id);
            json_str(stdout, p.addr);
            printf(",\"state\":\"%s\",\"heard\":%s,\"ops_it_lacks\":%llu,"
                   "\"last_contact_ms\":%llu,\"key\":\"%s\"}",
                   p.state, p.heard ? "true" : "false", p.ops_they, p.last_ms,
                   key_of(&r, p.id));
        } else {
            char lacks[32], contact[32];
            snprintf(lacks, sizeof lacks, p.heard ? "%llu ops" : "?",
                     p.ops_they);
            snprintf(contact, sizeof contact, "%.1fs ago",
                     (double)p.last_ms / 1000);
            printf("%-16s %-21s %-8s %12s %12s  %s\n", p.id, p.addr, p.state,
                   lacks, contact, key_of(&r, p.id));
        }
    }
    /* removed nodes the transport no longer knows of */
    for (size_t i = 0; i < r.n; i++) {
        if (strcmp(r.key[i], "removed"))
            continue;
        int shown = 0;
        for (size_t j = 0; j < r.n && !shown; j++)
            shown = !strcmp(r.key[j], "peer") &&
                    !strncmp(r.val[j], r.val[i], strlen(r.val[i]));
        if (shown)
            continue;
        if (a.json)
            printf(",{\"node\":\"%s\",\"state\":\"removed\",\"key\":\"%s\"}",
                   r.val[i], key_of(&r, r.val[i]));
        else
            printf("%-16s %-21s %-8s %12s %12s  %s\n", r.val[i], "-", "removed",
                   "", "", key_of(&r, r.val[i]));
    }
    if (a.json)
        printf("]\n");
    cli_reply_free(&r);
    return CLI_OK;
}

int cli_cmd_remove(int argc, char **argv)
{
    cli_args a;
    char store[PATH_MAX];
    int rc = cli_args_parse("remove", argc, argv, CLI_OPT_STORE, 2, &a);
    if (rc)
        return rc;
    if (!a.npos)
        return cli_usage_error("give the node to remove (see meshfs members)",
                               "");
    const char *want = a.pos[0];
    a.npos--; /* the rest names the mount */
    memmove(a.pos, a.pos + 1, sizeof a.pos - sizeof a.pos[0]);
    if ((rc = store_of(&a, store, sizeof store)))
        return rc;
    cli_reply r;
    if ((rc = ask_stat(store, &r)))
        return rc;
    /* a unique prefix of a member's id, or a whole id */
    char node[24] = "";
    int matches = 0;
    for (size_t i = 0; i < r.n; i++) {
        peer_row p;
        if (!strcmp(r.key[i], "peer") && parse_peer(r.val[i], &p) &&
            !strncmp(p.id, want, strlen(want))) {
            snprintf(node, sizeof node, "%s", p.id);
            matches++;
        }
    }
    const char *self = cli_reply_get(&r, "node");
    if (self && !strncmp(self, want, strlen(want)) && strlen(want) == 16) {
        cli_reply_free(&r);
        return cli_fail("%s is this node: it cannot remove itself", want);
    }
    if (matches > 1) {
        cli_reply_free(&r);
        return cli_fail("%s matches %d members: give more digits", want,
                        matches);
    }
    if (!matches) {
        if (strlen(want) != 16 || strspn(want, "0123456789abcdef") != 16) {
            cli_reply_free(&r);
            return cli_fail("%s is not a member (see meshfs members)", want);
        }
        snprintf(node, sizeof node, "%s", want); /* known only by its ops */
    }
    cli_reply_free(&r);
    char req[64];
    snprintf(req, sizeof req, "remove %s", node);
    if (cli_control_call(store, req, 10000, &r) < 0)
        return cli_fail("the daemon of %s does not answer", store);
    if (r.err) {
        int code = cli_fail("%s", r.msg);
        cli_reply_free(&r);
        return code;
    }
    cli_reply_free(&r);
    printf("removed %s from the mesh: every member stops waiting for it and "
           "refuses it from now on\n",
           node);
    return CLI_OK;
}

/* ---- meshfs migrate: a mesh key mesh moves to per-node keys ------------ */

int cli_cmd_migrate(int argc, char **argv)
{
    cli_args a;
    char store[PATH_MAX], mp[PATH_MAX + 16];
    int rc = cli_args_parse("migrate", argc, argv, CLI_OPT_STORE, 1, &a);
    if (rc || (rc = store_of(&a, store, sizeof store)))
        return rc;
    snprintf(mp, sizeof mp, "%s/%s", store, MFS_MIGRATING_FILE);
    mfs_ident id;
    int r = mfs_ident_load(store, &id);
    if (r == 0) {
        mfs_ident_wipe(&id);
        printf(access(mp, F_OK) == 0
                   ? "this node has its own key and the mesh is moving to "
                     "per-node keys: meshfs stat shows how far\n"
                   : "this node has its own key already: nothing to do\n");
        return CLI_OK;
    }
    if (r != -ENOENT)
        return cli_fail(
            "cannot read the node key %s/%s: %s", store, MFS_IDENT_FILE,
            r == -EPERM ? "readable by others (chmod 600 it)" : strerror(-r));
    cli_reply rep;
    r = cli_control_call(store, "migrate", 10000, &rep);
    if (r == 0 && rep.err) {
        int code = cli_fail("%s", rep.msg);
        cli_reply_free(&rep);
        return code;
    }
    if (r == 0)
        cli_reply_free(&rep);
    else { /* no daemon: the store itself, the next mount moves */
        mfs_store *s;
        if ((r = mfs_store_open(&s, store, NULL, 0)) < 0)
            return cli_fail("cannot open the store %s: %s", store,
                            mfs_store_strerror(r));
        r = mfs_node_migrate_store(store, s);
        mfs_store_close(s);
        if (r < 0)
            return cli_fail("cannot make this node's key in %s: %s", store,
                            strerror(-r));
    }
    printf("this node has a key of its own: %s\n"
           "the mesh moves to per-node keys once every member has run meshfs "
           "migrate\n(meshfs stat shows how far; the mesh key keeps working "
           "until then)\n",
           own_key(store));
    return CLI_OK;
}
